//! Configuration: command-line flags, environment variables (`SPORTELLO_*`) and an optional
//! TOML file, in that order of precedence. Without any of them the server runs on its embedded
//! default: SQLite under `data/`, emails kept in a local mailbox, a secret key made at first
//! start, and the demo comune.
//!
//! `Config::load` settles everything that depends on where the process runs, once: the file's
//! relative paths are taken from the file's folder, the others from the working directory, and
//! every path becomes absolute, so that a command run from another directory either finds the
//! same installation or says that there is none. It also checks every value it can without
//! opening anything, so that a mistake stops the start with a message naming the setting.

use std::path::{Path, PathBuf};

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

/// The WebRTC protocol stack's crates (`rtc*`, `webrtc*`, and `quinn_udp` under the `webrtc`
/// engine). Below errors, the stack writes a few lines on every call (warnings included, on calls
/// that go well), and its notices about candidates and malformed packets name the sender's IP
/// address and port: personal data, and, for packets anyone with a room link can send, a way to
/// fill the disk. The relay says what an administrator needs in its own words (`sfu` target).
pub const WEBRTC_STACK: [&str; 3] = ["rtc", "webrtc", "quinn_udp"];

/// The log filter: RUST_LOG's directives (`info` and the database driver's warnings when it is
/// not set or empty), with the WebRTC stack's crates kept to their errors unless a directive
/// names them: `RUST_LOG=debug` keeps the stack quiet, `RUST_LOG=info,rtc=info` shows its lines,
/// to look into a connection problem.
pub fn log_filter(rust_log: Option<&str>) -> String {
    let mut filter = match rust_log.map(str::trim) {
        Some(s) if !s.is_empty() => s.to_string(),
        _ => "info,sqlx=warn".to_string(),
    };
    let levels = ["trace", "debug", "info", "warn", "error", "off"];
    let targets: Vec<&str> = filter
        .split(',')
        .map(|d| d.split(['=', '[']).next().unwrap_or("").trim())
        .filter(|t| !t.is_empty() && !levels.contains(&t.to_ascii_lowercase().as_str()))
        .collect();
    let quiet: Vec<&str> = WEBRTC_STACK
        .into_iter()
        .filter(|stack| !targets.iter().any(|t| t.starts_with(stack)))
        .collect();
    for stack in quiet {
        filter.push_str(&format!(",{stack}=error"));
    }
    filter
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// For people.
    Text,
    /// One JSON object per line, for log collectors.
    Json,
}

/// Whether a missing secret key file may be made (the server's start, `init`) or must already
/// be there (maintenance commands, which would otherwise sign links with a key nobody uses).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Create {
    IfMissing,
    Never,
}

/// Sportello: appointments with the town offices, in person, by phone or by video call.
///
/// Every option can also be given as an environment variable (shown in brackets) or as a key of
/// the TOML file named by --config (the long option's name with '_' for '-', e.g.
/// `database_url = "postgres://..."`). Flags win over the environment, which wins over the file.
/// A new installation: `sportello init`, then `sportello admin create --email ...`.
#[derive(Debug, Clone, Default, Parser, Deserialize)]
#[command(name = "sportello", version, about, long_about)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    #[command(subcommand)]
    #[serde(skip)]
    pub command: Option<Command>,

    /// TOML configuration file [default: sportello.toml in the working directory, if there is
    /// one]. Relative paths in it (data_dir, database_url's sqlite:// file, tls_cert, tls_key,
    /// town_logo) are relative to the file's folder; on the command line, to the working
    /// directory.
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

    /// Folder for the embedded database, the secret key and the development certificate, made
    /// by `sportello init` or by the server's first start [default: data, in the working
    /// directory]. Commands other than the server's start refuse to run without it.
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

    /// SMTP sessions open at once, each sending one email at a time [default: 32]. Through a
    /// relay that takes 100 ms to accept a message, 32 pass about 300 emails a second.
    #[arg(long, env = "SPORTELLO_SMTP_CONCURRENCY", value_parser = clap::value_parser!(u16).range(1..=1000))]
    pub smtp_concurrency: Option<u16>,

    /// Seconds the SMTP relay may take to answer each command before the email is tried again
    /// later [default: 20]. An email in flight is this node's for sixteen times as long (about five
    /// minutes by default); with several nodes, another sends it only after that.
    #[arg(long, env = "SPORTELLO_SMTP_TIMEOUT_SECONDS", value_parser = clap::value_parser!(u64).range(1..=600))]
    pub smtp_timeout_seconds: Option<u64>,

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

    /// Days after an appointment's end when the person's data (name, email, phone, fiscal code,
    /// reason, note) is removed by the daily sweep; statistics still count the appointment
    /// [default: 365].
    #[arg(long, env = "SPORTELLO_RETENTION_DAYS")]
    pub retention_days: Option<i64>,

    /// Days after an email was sent when its recipient and body are removed [default: 30].
    #[arg(long, env = "SPORTELLO_EMAIL_RETENTION_DAYS")]
    pub email_retention_days: Option<i64>,

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
    /// level is RUST_LOG's (default info; the WebRTC stack's own lines only when errors, unless
    /// RUST_LOG names it: they name addresses); requests are logged with their tokens hidden.
    #[arg(long, env = "SPORTELLO_LOG_FORMAT")]
    pub log_format: Option<LogFormat>,

    /// Seconds a client may take to send a request's headers (slow clients are dropped)
    /// [default: 10].
    #[arg(long, env = "SPORTELLO_HEADER_TIMEOUT_SECONDS")]
    pub header_timeout_seconds: Option<u64>,

    /// Seconds an HTTP/2 connection may carry nothing either way before it is closed (HTTP/1.1
    /// connections close by the header timeout) [default: 60].
    #[arg(long, env = "SPORTELLO_IDLE_TIMEOUT_SECONDS")]
    pub idle_timeout_seconds: Option<u64>,

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

    /// Minutes a seat freed for a person on a waitlist is held for them before it goes to the
    /// next [default: 30].
    #[arg(long, env = "SPORTELLO_WAITLIST_HOLD_MINUTES", value_parser = clap::value_parser!(i64).range(5..=1440))]
    pub waitlist_hold_minutes: Option<i64>,

    /// Days a confirmed place on a waitlist lasts [default: 30].
    #[arg(long, env = "SPORTELLO_WAITLIST_DAYS", value_parser = clap::value_parser!(i64).range(1..=365))]
    pub waitlist_days: Option<i64>,

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

    /// This node's address for the other nodes of the same service, when several nodes share
    /// one PostgreSQL behind a load balancer (http://10.0.0.2:8080, its plain `listen`): a
    /// room's socket that reaches another node is forwarded here when this node serves the
    /// room. Put the nodes' addresses in trusted_proxies too [default: none, one node].
    #[arg(long, env = "SPORTELLO_NODE_URL")]
    pub node_url: Option<String>,

    /// This node's name among the service's nodes (letters, digits, - and _) [default: its
    /// node_url].
    #[arg(long, env = "SPORTELLO_NODE_ID")]
    pub node_id: Option<String>,

    /// Single-threaded reactors that run the media connections (0: share tokio's workers);
    /// one saves the cross-thread wake-ups a packet otherwise costs; a room's two connections
    /// always share one, and new rooms go to the one with the fewest [default: 1].
    #[arg(long, env = "SPORTELLO_MEDIA_REACTORS")]
    pub media_reactors: Option<usize>,

    /// What drives the media connections: rtc or webrtc (see docs/deploy.md) [default: rtc].
    #[arg(long, env = "SPORTELLO_MEDIA_ENGINE")]
    pub media_engine: Option<sfu::EngineKind>,

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

    /// Create the demo comune (offices, services, hours) in the database the server makes at
    /// its first start: --demo or --demo=false, SPORTELLO_DEMO=true/false, `demo = true` in the
    /// file [default: on for the embedded default, that is without --config, sportello.toml,
    /// --data-dir and --database-url; off otherwise]. Commands and `init` never create it, nor
    /// does a start on a database that exists already.
    #[arg(
        long,
        env = "SPORTELLO_DEMO",
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "true",
        value_parser = clap::builder::BoolishValueParser::new()
    )]
    pub demo: Option<bool>,

    /// The town's name, in the header and footer of every page, e.g. "Comune di Ozieri"
    /// [default: Comune di Esempio].
    #[arg(long, env = "SPORTELLO_TOWN_NAME")]
    pub town_name: Option<String>,

    /// The town hall's address, in the footer of every page ("" for none)
    /// [default: Piazza Municipio 1].
    #[arg(long, env = "SPORTELLO_TOWN_ADDRESS")]
    pub town_address: Option<String>,

    /// The town's patron saint's day, on which the offices close every year as on the national
    /// holidays (which are always kept, Easter Monday included): "DD/MM" and the saint's name,
    /// e.g. "04/10 San Francesco" [default: none]. A calendar open on holidays says so in the
    /// console.
    #[arg(long, env = "SPORTELLO_PATRON_SAINT")]
    pub patron_saint: Option<String>,

    /// The town's logo or coat of arms, in the header of every page: an image file (PNG, SVG,
    /// JPEG, WebP or GIF, at most 1 MiB, read at start and served at /logo) or an https://
    /// address [default: the public-administration icon of Bootstrap Italia].
    #[arg(long, env = "SPORTELLO_TOWN_LOGO")]
    pub town_logo: Option<String>,

    /// Where citizens learn how their data is handled, linked in the footer of every page: the
    /// privacy notice's address (https://...) or the data protection officer's email
    /// [default: none].
    #[arg(long, env = "SPORTELLO_PRIVACY_CONTACT")]
    pub privacy_contact: Option<String>,

    /// The accessibility statement's address (https://...), or an email address for reporting
    /// accessibility problems, linked in the footer of every page [default: none].
    #[arg(long, env = "SPORTELLO_ACCESSIBILITY_CONTACT")]
    pub accessibility_contact: Option<String>,

    /// The town's own privacy notice, shown at /privacy instead of the built-in one: a UTF-8
    /// text file (at most 64 KiB; "## " starts a heading, a blank line a paragraph; web and
    /// email addresses become links) [default: the built-in notice, naming the town as the
    /// controller and privacy_contact]. Each booking stores the version of the notice it
    /// consented to.
    #[arg(long, env = "SPORTELLO_PRIVACY_NOTICE")]
    pub privacy_notice: Option<PathBuf>,

    /// The town's own accessibility statement, shown at /accessibilita instead of the built-in
    /// one (AgID's model, with accessibility_contact for reports): a text file as for
    /// privacy_notice [default: the built-in statement].
    #[arg(long, env = "SPORTELLO_ACCESSIBILITY_STATEMENT")]
    pub accessibility_statement: Option<PathBuf>,

    /// A directory of more languages for pages and emails: one file a language, named by its
    /// ISO 639 code (de.toml, sl.toml), made by copying the built-in booking/lingue/en.toml and
    /// translating its right-hand sides; read at start-up, offered in every page's language
    /// switch [default: the built-in Italian, English and German].
    #[arg(long, env = "SPORTELLO_LANGUAGES_DIR")]
    pub languages_dir: Option<PathBuf>,

    /// The OpenID Connect provider through which citizens log in with SPID or CIE (the
    /// issuer's address, e.g. https://login.comune.example.it; its discovery document is read
    /// from /.well-known/openid-configuration) [default: none, no login]. Register
    /// <public_url>/accedi/ritorno as the redirect address.
    #[arg(long, env = "SPORTELLO_OIDC_ISSUER")]
    pub oidc_issuer: Option<String>,

    /// This site's client id at the provider (needed with oidc_issuer).
    #[arg(long, env = "SPORTELLO_OIDC_CLIENT_ID")]
    pub oidc_client_id: Option<String>,

    /// This site's client secret at the provider [default: none, a public client with PKCE].
    #[arg(long, env = "SPORTELLO_OIDC_CLIENT_SECRET")]
    pub oidc_client_secret: Option<String>,

    /// The authentication levels accepted, comma-separated, the first one asked for (acr);
    /// an ID token with another level is refused. "" asks for none and accepts any
    /// [default: https://www.spid.gov.it/SpidL2,https://www.spid.gov.it/SpidL3].
    #[arg(long, env = "SPORTELLO_OIDC_ACR")]
    pub oidc_acr: Option<String>,

    /// The ID token's claim with the fiscal code (a "TINIT-" prefix is removed)
    /// [default: https://attributes.eid.gov.it/fiscal_number].
    #[arg(long, env = "SPORTELLO_OIDC_CLAIM_FISCAL_CODE")]
    pub oidc_claim_fiscal_code: Option<String>,

    /// The ID token's claim with the given name [default: given_name].
    #[arg(long, env = "SPORTELLO_OIDC_CLAIM_GIVEN_NAME")]
    pub oidc_claim_given_name: Option<String>,

    /// The ID token's claim with the family name [default: family_name].
    #[arg(long, env = "SPORTELLO_OIDC_CLAIM_FAMILY_NAME")]
    pub oidc_claim_family_name: Option<String>,

    /// The ID token's claim with the email address; it counts as verified (no verification
    /// email) when the token's email_verified is true [default: email].
    #[arg(long, env = "SPORTELLO_OIDC_CLAIM_EMAIL")]
    pub oidc_claim_email: Option<String>,
}

/// Things to do instead of serving. All but `init` and `restore` need an installation (its
/// database, and its secret key unless `secret_key` is set) and refuse to make one.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum Command {
    /// Makes a new, empty installation (the data folder, the database with its schema, the
    /// secret key; no demo) and says what to do next. Refuses if there is one already.
    Init,
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
    /// Reads flags and environment, then the file, and settles the result (see `resolve`).
    pub fn load() -> anyhow::Result<Config> {
        let cwd = std::env::current_dir()
            .map_err(|e| anyhow::anyhow!("cannot read the working directory: {e}"))?;
        let c = Config::settle(Config::parse(), &cwd)?;
        // More languages before anything asks for a text (the checks build the town's pages).
        if let Some(dir) = &c.languages_dir {
            booking::i18n::load_dir(dir).map_err(|e| anyhow::anyhow!("languages_dir: {e}"))?;
        }
        c.check()?;
        Ok(c)
    }

    /// Completes the flags and environment in `c` with the TOML file (--config, or
    /// sportello.toml in `cwd`), chooses the demo's default, makes every path absolute (the
    /// file's from its folder, the others from `cwd`; `config` itself then names the file
    /// read) and checks the values.
    pub fn resolve(c: Config, cwd: &Path) -> anyhow::Result<Config> {
        let c = Config::settle(c, cwd)?;
        c.check()?;
        Ok(c)
    }

    /// `resolve` without the checks.
    fn settle(mut c: Config, cwd: &Path) -> anyhow::Result<Config> {
        let file = match &c.config {
            Some(p) => Some(cwd.join(p)),
            None => Some(cwd.join("sportello.toml")).filter(|p| p.is_file()),
        };
        if let Some(path) = &file {
            let text = std::fs::read_to_string(path)
                .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?;
            let mut f: Config =
                toml::from_str(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
            f.make_paths_absolute(path.parent().unwrap_or(cwd));
            c.merge(f);
            c.config = Some(absolute(path));
        }
        // The demo only for the embedded default: a town's configuration names its data.
        if c.demo.is_none() {
            c.demo = Some(file.is_none() && c.data_dir.is_none() && c.database_url.is_none());
        }
        c.data_dir = Some(c.data_dir());
        c.make_paths_absolute(cwd);
        Ok(c)
    }

    /// Makes the relative paths among the settings relative to `base`, and absolute.
    fn make_paths_absolute(&mut self, base: &Path) {
        for p in [
            &mut self.data_dir,
            &mut self.tls_cert,
            &mut self.tls_key,
            &mut self.privacy_notice,
            &mut self.accessibility_statement,
            &mut self.languages_dir,
        ]
        .into_iter()
        .flatten()
        {
            *p = absolute(&base.join(&*p));
        }
        if let Some(logo) = &mut self.town_logo {
            if !crate::contact::is_web_address(logo) {
                *logo = absolute(&base.join(&*logo)).display().to_string();
            }
        }
        if let Some(url) = &mut self.database_url {
            *url = absolute_sqlite_url(url, base);
        }
    }

    /// Checks every value that can be checked without opening anything.
    pub fn check(&self) -> anyhow::Result<()> {
        self.time_zone()?;
        self.holidays()?;
        self.trusted_proxies()?;
        self.ice_servers()?;
        self.check_media_ports()?;
        self.clock_offset()?;
        let url = self.public_url();
        let host = url
            .strip_prefix("https://")
            .or_else(|| url.strip_prefix("http://"))
            .unwrap_or("");
        anyhow::ensure!(
            !host.is_empty() && !host.starts_with('/') && !url.contains(char::is_whitespace),
            "public_url must be an address like https://prenotazioni.comune.example.it, not {url:?}"
        );
        self.node()?;
        self.mail_from()
            .parse::<lettre::message::Mailbox>()
            .map_err(|e| anyhow::anyhow!("mail_from {:?}: {e}", self.mail_from()))?;
        if self.tls_mode() == TlsMode::Files {
            anyhow::ensure!(
                self.tls_cert.is_some() && self.tls_key.is_some(),
                "--tls files needs --tls-cert and --tls-key"
            );
        }
        if let Some(k) = &self.secret_key {
            anyhow::ensure!(
                k.len() >= 32,
                "the secret key must have at least 32 characters"
            );
        }
        if let Some(n) = self.smtp_concurrency {
            // The command line refuses these already; a configuration file must too.
            anyhow::ensure!(
                (1..=1000).contains(&n),
                "smtp_concurrency must be between 1 and 1000, not {n}"
            );
        }
        if let Some(n) = self.smtp_timeout_seconds {
            anyhow::ensure!(
                (1..=600).contains(&n),
                "smtp_timeout_seconds must be between 1 and 600, not {n}"
            );
        }
        // An HTTP/2 connection carrying an open room closes if nothing goes over it for the idle
        // timeout: the room's heartbeat must come sooner. (HTTP/2 is served over TLS only.)
        let (idle, beat) = (
            self.connection_limits()?.idle_timeout,
            self.room_settings().heartbeat,
        );
        anyhow::ensure!(
            self.tls_mode() == TlsMode::Off || idle > beat,
            "idle_timeout_seconds ({}) must be longer than room_heartbeat_seconds ({})",
            idle.as_secs(),
            beat.as_secs()
        );
        self.town()?;
        self.oidc()?;
        Ok(())
    }

    /// The citizens' login provider, if one is set: the issuer must be an https:// address
    /// (http:// only on this machine, for tests) and comes with a client id.
    pub fn oidc(&self) -> anyhow::Result<Option<crate::oidc::Settings>> {
        let Some(issuer) = self.oidc_issuer.as_deref().map(str::trim) else {
            return Ok(None);
        };
        let loopback = ["http://127.0.0.1:", "http://localhost:", "http://[::1]:"];
        anyhow::ensure!(
            (issuer.starts_with("https://") || loopback.iter().any(|p| issuer.starts_with(p)))
                && !issuer.contains(char::is_whitespace),
            "oidc_issuer must be an https:// address, not {issuer:?}"
        );
        let client_id = self.oidc_client_id.as_deref().map(str::trim).unwrap_or("");
        anyhow::ensure!(!client_id.is_empty(), "oidc_issuer needs oidc_client_id");
        let claim = |v: &Option<String>, default: &str| {
            v.as_deref()
                .map(str::trim)
                .filter(|c| !c.is_empty())
                .unwrap_or(default)
                .to_string()
        };
        let acr = self
            .oidc_acr
            .as_deref()
            .unwrap_or("https://www.spid.gov.it/SpidL2,https://www.spid.gov.it/SpidL3")
            .split(',')
            .map(str::trim)
            .filter(|a| !a.is_empty())
            .map(String::from)
            .collect();
        Ok(Some(crate::oidc::Settings {
            issuer: issuer.trim_end_matches('/').to_string(),
            client_id: client_id.to_string(),
            client_secret: self.oidc_client_secret.clone().filter(|s| !s.is_empty()),
            redirect: format!("{}/accedi/ritorno", self.public_url().trim_end_matches('/')),
            acr,
            claims: crate::oidc::ClaimNames {
                fiscal_code: claim(
                    &self.oidc_claim_fiscal_code,
                    "https://attributes.eid.gov.it/fiscal_number",
                ),
                given_name: claim(&self.oidc_claim_given_name, "given_name"),
                family_name: claim(&self.oidc_claim_family_name, "family_name"),
                email: claim(&self.oidc_claim_email, "email"),
            },
        }))
    }

    /// The business limits the store enforces, from the settings (each at least 1).
    pub fn store_limits(&self) -> booking::Limits {
        use chrono::Duration;
        let mut limits = booking::Limits::default();
        if let Some(n) = self.max_active_per_email {
            limits.max_active_per_email = n.max(1);
        }
        if let Some(n) = self.max_unverified_per_email {
            limits.max_unverified_per_email = n.max(1);
        }
        if let Some(d) = self.retention_days {
            limits.keep_appointments = Duration::days(d.max(1));
        }
        if let Some(d) = self.email_retention_days {
            limits.keep_emails = Duration::days(d.max(1));
        }
        if let Some(n) = self.verifications_per_day {
            limits.verifications_per_day = n.max(1);
        }
        if let Some(h) = self.reminder_hours {
            limits.reminder_day = Duration::hours(h.max(1));
        }
        if let Some(m) = self.last_reminder_minutes {
            limits.reminder_hour = Duration::minutes(m.max(1));
        }
        if let Some(m) = self.waitlist_hold_minutes {
            limits.waitlist_hold = Duration::minutes(m.clamp(5, 1440));
        }
        if let Some(d) = self.waitlist_days {
            limits.waitlist_for = Duration::days(d.clamp(1, 365));
        }
        limits
    }

    /// The town's name, address, logo and contacts, for every page.
    pub fn town(&self) -> anyhow::Result<crate::town::Town> {
        crate::town::Town::from_settings(
            self.town_name.as_deref(),
            self.town_address.as_deref(),
            self.town_logo.as_deref(),
            self.privacy_contact.as_deref(),
            self.accessibility_contact.as_deref(),
        )?
        .with_retention(&self.store_limits())
        .with_notices(
            self.privacy_notice.as_deref(),
            self.accessibility_statement.as_deref(),
        )
        .map(|t| crate::town::Town {
            citizen_login: self.oidc_issuer.is_some(),
            ..t
        })
    }

    /// The town's recurring closures: the national holidays and `patron_saint`'s day.
    pub fn holidays(&self) -> anyhow::Result<booking::holidays::Holidays> {
        Ok(booking::holidays::Holidays {
            patron: self
                .patron_saint
                .as_deref()
                .map(booking::holidays::Patron::parse)
                .transpose()
                .map_err(anyhow::Error::msg)?,
        })
    }

    /// Whether the server's first start puts the demo comune into the new database.
    pub fn demo(&self) -> bool {
        self.demo.unwrap_or(false)
    }

    /// Posts per minute and burst per client address.
    pub fn rate_limits(&self) -> (u32, u32) {
        (
            self.rate_limit_per_minute.unwrap_or(10),
            self.rate_limit_burst.unwrap_or(5),
        )
    }

    pub fn log_format(&self) -> LogFormat {
        self.log_format.unwrap_or(LogFormat::Text)
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
            smtp_concurrency,
            smtp_timeout_seconds,
            mail_from,
            max_active_per_email,
            max_unverified_per_email,
            retention_days,
            email_retention_days,
            verifications_per_day,
            rate_limit_per_minute,
            rate_limit_burst,
            proof_of_work,
            proof_of_work_cost,
            trusted_proxies,
            log_format,
            header_timeout_seconds,
            idle_timeout_seconds,
            max_connections,
            max_connections_per_client,
            reminder_hours,
            last_reminder_minutes,
            waitlist_hold_minutes,
            waitlist_days,
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
            node_url,
            node_id,
            media_reactors,
            media_engine,
            ice_servers,
            turn_secret,
            turn_urls,
            turn_ttl_seconds,
            start_clock_at,
            demo,
            town_name,
            town_address,
            patron_saint,
            town_logo,
            privacy_contact,
            accessibility_contact,
            privacy_notice,
            accessibility_statement,
            languages_dir,
            oidc_issuer,
            oidc_client_id,
            oidc_client_secret,
            oidc_acr,
            oidc_claim_fiscal_code,
            oidc_claim_given_name,
            oidc_claim_family_name,
            oidc_claim_email
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
            idle_timeout: std::time::Duration::from_secs(
                self.idle_timeout_seconds.unwrap_or(60).max(1),
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
    /// This node's (id, url) when several nodes share the database; `None` for one node.
    pub fn node(&self) -> anyhow::Result<Option<(String, String)>> {
        let Some(url) = self.node_url.as_deref() else {
            anyhow::ensure!(self.node_id.is_none(), "node_id needs node_url");
            return Ok(None);
        };
        anyhow::ensure!(
            (url.starts_with("http://") || url.starts_with("https://"))
                && url.len() > 8
                && !url.contains(char::is_whitespace),
            "node_url must be an address like http://10.0.0.2:8080, not {url:?}"
        );
        anyhow::ensure!(
            self.database_url().starts_with("postgres"),
            "node_url: several nodes share one PostgreSQL database (database_url = \"postgres://...\")"
        );
        let id = self.node_id.clone().unwrap_or_else(|| url.to_string());
        anyhow::ensure!(
            !id.is_empty()
                && id.len() <= 100
                && id
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_.:/".contains(c)),
            "node_id: letters, digits, - and _ only, not {id:?}"
        );
        Ok(Some((id, url.trim_end_matches('/').to_string())))
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
        let engine = self.media_engine.unwrap_or_default();
        sfu::Config {
            udp_addrs: list(&self.media_udp, "0.0.0.0:0"),
            tcp_addrs: list(&self.media_tcp, "0.0.0.0:0"),
            nat_ips: self.media_public_ip.clone().into_iter().collect(),
            reactor_threads: self.media_reactors.unwrap_or(1),
            ports: self.media_port_range(),
            engine,
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

    /// Where the secret key is kept when `secret_key` is not set.
    pub fn secret_key_file(&self) -> PathBuf {
        self.data_dir().join("secret.key")
    }

    /// The secret key: configured, or read from DATA_DIR/secret.key, which `create` allows to
    /// make (and the data folder with it) when it is missing.
    pub fn secret(&self, create: Create) -> anyhow::Result<Vec<u8>> {
        if let Some(k) = &self.secret_key {
            anyhow::ensure!(
                k.len() >= 32,
                "the secret key must have at least 32 characters"
            );
            return Ok(k.as_bytes().to_vec());
        }
        let path = self.secret_key_file();
        match std::fs::read(&path) {
            Ok(k) => {
                anyhow::ensure!(k.len() >= 32, "{} is too short", path.display());
                return Ok(k);
            }
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                anyhow::bail!("cannot read {}: {e}", path.display())
            }
            Err(_) if create == Create::Never => anyhow::bail!(
                "no secret key at {}: put back the secret.key saved with the database, or set \
                 secret_key, or point to the installation with --config or --data-dir (a new \
                 key would break every link already sent)",
                path.display()
            ),
            Err(_) => {}
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

/// What to do when a command finds no installation.
pub const NOT_INSTALLED_HINT: &str = "run `sportello init` to make a new installation here, or \
    point to the existing one with --config or --data-dir";

/// `p` made absolute without touching the file system (a missing folder stays missing).
fn absolute(p: &Path) -> PathBuf {
    std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf())
}

/// A `sqlite:` URL whose relative file is taken from `base`; other URLs as they are.
fn absolute_sqlite_url(url: &str, base: &Path) -> String {
    let Some(rest) = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
    else {
        return url.to_string();
    };
    let (file, query) = match rest.split_once('?') {
        Some((f, q)) => (f, Some(q)),
        None => (rest, None),
    };
    if file.is_empty() || file == ":memory:" || Path::new(file).is_absolute() {
        return url.to_string();
    }
    let file = absolute(&base.join(file));
    match query {
        Some(q) => format!("sqlite://{}?{q}", file.display()),
        None => format!("sqlite://{}", file.display()),
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
    use clap::CommandFactory;

    #[test]
    fn the_webrtc_stack_logs_only_its_errors_unless_rust_log_names_it() {
        for (rust_log, filter) in [
            (
                None,
                "info,sqlx=warn,rtc=error,webrtc=error,quinn_udp=error",
            ),
            (
                Some(" "),
                "info,sqlx=warn,rtc=error,webrtc=error,quinn_udp=error",
            ),
            (Some("info"), "info,rtc=error,webrtc=error,quinn_udp=error"),
            (
                Some("DEBUG,web=trace"),
                "DEBUG,web=trace,rtc=error,webrtc=error,quinn_udp=error",
            ),
            (
                Some("info,rtc=info"),
                "info,rtc=info,webrtc=error,quinn_udp=error",
            ),
            (
                Some("warn,rtc_ice=debug"),
                "warn,rtc_ice=debug,webrtc=error,quinn_udp=error",
            ),
            (
                Some("warn,webrtc[peer]=debug"),
                "warn,webrtc[peer]=debug,rtc=error,quinn_udp=error",
            ),
        ] {
            assert_eq!(log_filter(rust_log), filter, "{rust_log:?}");
            assert!(
                tracing_subscriber::EnvFilter::try_new(filter).is_ok(),
                "{filter}"
            );
        }
    }

    fn parse(args: &[&str]) -> Config {
        Config::try_parse_from(std::iter::once("sportello").chain(args.iter().copied())).unwrap()
    }

    #[test]
    fn flags_win_over_the_file_which_fills_what_is_missing() {
        let mut c = parse(&["--listen", "127.0.0.1:9000"]);
        let f: Config = toml::from_str(
            "listen = \"0.0.0.0:80\"\npublic_url = \"https://comune.example\"\nstart_clock_at = \"2026-12-01T08:55:00Z\"\ndemo = false",
        )
        .unwrap();
        c.merge(f);
        assert_eq!(c.listen(), "127.0.0.1:9000");
        assert_eq!(c.public_url(), "https://comune.example");
        assert_eq!(c.start_clock_at.as_deref(), Some("2026-12-01T08:55:00Z"));
        assert_eq!(c.demo, Some(false));
    }

    /// A TOML value for every setting: a flag added without its key here fails the test below,
    /// and so does a key the file reads but `merge` forgets.
    const EVERY_KEY: &[(&str, &str)] = &[
        ("listen", "\"0.0.0.0:8080\""),
        ("https_listen", "\"0.0.0.0:8443\""),
        ("admin_listen", "\"127.0.0.1:9090\""),
        ("tls", "\"files\""),
        ("tls_cert", "\"cert.pem\""),
        ("tls_key", "\"key.pem\""),
        ("public_url", "\"https://prenotazioni.comune.example.it\""),
        ("data_dir", "\"/var/lib/sportello\""),
        ("database_url", "\"postgres://u:p@db/sportello\""),
        ("secret_key", "\"0123456789abcdef0123456789abcdef\""),
        ("time_zone", "\"Europe/Rome\""),
        ("smtp_host", "\"smtp.comune.example.it\""),
        ("smtp_port", "2525"),
        ("smtp_security", "\"none\""),
        ("smtp_username", "\"u\""),
        ("smtp_password", "\"p\""),
        ("smtp_concurrency", "8"),
        ("smtp_timeout_seconds", "30"),
        ("mail_from", "\"Comune <noreply@comune.example.it>\""),
        ("max_active_per_email", "3"),
        ("max_unverified_per_email", "1"),
        ("retention_days", "400"),
        ("email_retention_days", "10"),
        ("verifications_per_day", "4"),
        ("rate_limit_per_minute", "20"),
        ("rate_limit_burst", "6"),
        ("proof_of_work", "false"),
        ("proof_of_work_cost", "1000"),
        ("trusted_proxies", "\"127.0.0.1\""),
        ("log_format", "\"json\""),
        ("header_timeout_seconds", "7"),
        ("idle_timeout_seconds", "90"),
        ("max_connections", "100"),
        ("max_connections_per_client", "10"),
        ("reminder_hours", "48"),
        ("last_reminder_minutes", "30"),
        ("waitlist_hold_minutes", "45"),
        ("waitlist_days", "60"),
        ("worker_interval", "2"),
        ("room_citizen_early_minutes", "4"),
        ("room_operator_early_minutes", "14"),
        ("room_grace_minutes", "20"),
        ("room_heartbeat_seconds", "9"),
        ("room_hello_seconds", "8"),
        ("media_udp", "\"0.0.0.0:3478\""),
        ("media_tcp", "\"off\""),
        ("media_ports", "\"40000-40199\""),
        ("media_public_ip", "\"203.0.113.7\""),
        ("media_reactors", "2"),
        ("media_engine", "\"rtc\""),
        ("ice_servers", "\"[]\""),
        ("turn_secret", "\"s3cret\""),
        ("turn_urls", "\"turn:turn.comune.example.it:3478\""),
        ("turn_ttl_seconds", "600"),
        ("start_clock_at", "\"2026-12-01T08:55:00Z\""),
        ("demo", "true"),
        ("town_name", "\"Comune di Ozieri\""),
        ("town_address", "\"Piazza Carlo Alberto 1\""),
        ("patron_saint", "\"04/10 San Francesco\""),
        ("town_logo", "\"https://www.comune.example.it/stemma.svg\""),
        ("privacy_contact", "\"dpo@comune.example.it\""),
        (
            "accessibility_contact",
            "\"https://form.agid.gov.it/view/x\"",
        ),
        ("privacy_notice", "\"informativa.txt\""),
        ("accessibility_statement", "\"accessibilita.txt\""),
        ("languages_dir", "\"lingue\""),
        ("node_url", "\"http://10.0.0.2:8080\""),
        ("node_id", "\"nodo-2\""),
        ("oidc_issuer", "\"https://login.comune.example.it\""),
        ("oidc_client_id", "\"sportello\""),
        ("oidc_client_secret", "\"segreto\""),
        ("oidc_acr", "\"https://www.spid.gov.it/SpidL2\""),
        ("oidc_claim_fiscal_code", "\"fiscal_number\""),
        ("oidc_claim_given_name", "\"name\""),
        ("oidc_claim_family_name", "\"surname\""),
        ("oidc_claim_email", "\"mail\""),
    ];

    #[test]
    fn every_setting_can_come_from_the_file() {
        let flags: std::collections::BTreeSet<String> = Config::command()
            .get_arguments()
            .map(|a| a.get_id().to_string())
            .filter(|id| !["config", "help", "version"].contains(&id.as_str()))
            .collect();
        let keys: std::collections::BTreeSet<String> =
            EVERY_KEY.iter().map(|(k, _)| k.to_string()).collect();
        assert_eq!(flags, keys, "every flag is a key of the file, and no more");
        let text: String = EVERY_KEY
            .iter()
            .map(|(k, v)| format!("{k} = {v}\n"))
            .collect();
        let mut c = parse(&[]);
        c.merge(toml::from_str(&text).unwrap());
        let shown = format!("{c:?}");
        for (k, _) in EVERY_KEY {
            assert!(
                shown.contains(&format!(" {k}: Some(")),
                "{k} from the file is dropped"
            );
        }
    }

    #[test]
    fn the_file_refuses_unknown_keys_and_bad_values_naming_them() {
        for (text, says) in [
            ("lisen = \"x\"", "unknown field `lisen`"),
            ("config = \"other.toml\"", "unknown field `config`"),
            ("no_demo = true", "unknown field `no_demo`"),
            ("max_connections = \"many\"", "max_connections"),
            ("tls = \"maybe\"", "unknown variant `maybe`"),
            ("log_format = \"xml\"", "unknown variant `xml`"),
            ("smtp_security = \"ssl\"", "unknown variant `ssl`"),
            ("media_engine = \"janus\"", "unknown variant `janus`"),
            ("demo = \"yes\"", "demo"),
            ("smtp_port = 70000", "smtp_port"),
        ] {
            let e = toml::from_str::<Config>(text).unwrap_err().to_string();
            assert!(e.contains(says), "{text}: {e}");
        }
    }

    #[test]
    fn the_media_engine_is_one_of_two_with_the_same_defaults() {
        let p = |args: &[&str]| {
            Config::try_parse_from(std::iter::once("sportello").chain(args.iter().copied()))
        };
        let e = p(&["--media-engine", "janus"]).unwrap_err().to_string();
        assert!(e.contains("must be webrtc or rtc"), "{e}");
        let webrtc = p(&["--media-engine", "webrtc"]).unwrap().relay_config();
        assert_eq!(webrtc.engine, sfu::EngineKind::Webrtc);
        let default = p(&[]).unwrap().relay_config();
        assert_eq!(default.engine, sfu::EngineKind::Rtc);
        for relay in [webrtc, default] {
            assert_eq!(relay.udp_addrs, vec!["0.0.0.0:0".to_string()]);
            assert_eq!(relay.tcp_addrs, vec!["0.0.0.0:0".to_string()]);
        }
    }

    #[test]
    fn demo_is_a_switch() {
        let demo = |args: &[&str]| {
            Config::try_parse_from(std::iter::once("sportello").chain(args.iter().copied()))
                .map(|c| c.demo)
        };
        assert_eq!(demo(&["--demo"]).unwrap(), Some(true));
        assert_eq!(demo(&["--demo=yes"]).unwrap(), Some(true));
        assert_eq!(demo(&["--demo=false"]).unwrap(), Some(false));
        assert_eq!(demo(&[]).unwrap(), None);
        assert!(demo(&["--demo=maybe"]).is_err());
        assert!(demo(&["--no-demo"]).is_err(), "one switch, --demo=false");
        // A command after the switch is a command, not its value.
        let c = parse(&["--demo", "room-link", "SP-AAAA-BBBB"]);
        assert_eq!(c.demo, Some(true));
        assert!(c.command.is_some());
        assert!(matches!(parse(&["init"]).command, Some(Command::Init)));
    }

    /// The long help of a flag, as `--help` prints it.
    fn help_of(id: &str) -> String {
        let cmd = Config::command();
        let arg = cmd
            .get_arguments()
            .find(|a| a.get_id() == id)
            .unwrap_or_else(|| panic!("no flag {id}"));
        arg.get_long_help()
            .or(arg.get_help())
            .map(|h| {
                h.to_string()
                    .split_whitespace()
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .unwrap_or_default()
    }

    #[test]
    fn the_help_says_the_defaults_the_code_uses() {
        let d = Config::default();
        let limits = booking::Limits::default();
        let room = signaling::Settings::default();
        let relay = d.relay_config();
        let conn = d.connection_limits().unwrap();
        let off = parse(&["--tls", "off"]);
        let says = |id: &str, default: String| {
            let help = help_of(id);
            assert!(
                help.contains(&format!("[default: {default}")),
                "--{id}: the help says {help:?}, the code {default:?}"
            );
        };
        says("listen", d.listen());
        says("https_listen", d.https_listen());
        says("admin_listen", d.admin_listen());
        says("tls", "dev".into());
        says("public_url", d.public_url());
        assert!(help_of("public_url").contains(&format!("or {} with --tls off", off.public_url())));
        says("data_dir", d.data_dir().display().to_string());
        says("time_zone", d.time_zone().unwrap().to_string());
        says(
            "smtp_port",
            format!("{} with starttls", SmtpSecurity::Starttls.default_port()),
        );
        assert!(help_of("smtp_port")
            .contains(&format!("{} with tls", SmtpSecurity::Tls.default_port())));
        says("smtp_security", "starttls".into());
        says("mail_from", d.mail_from());
        says(
            "max_active_per_email",
            limits.max_active_per_email.to_string(),
        );
        says(
            "max_unverified_per_email",
            limits.max_unverified_per_email.to_string(),
        );
        says(
            "verifications_per_day",
            limits.verifications_per_day.to_string(),
        );
        says(
            "retention_days",
            limits.keep_appointments.num_days().to_string(),
        );
        says(
            "email_retention_days",
            limits.keep_emails.num_days().to_string(),
        );
        says(
            "reminder_hours",
            limits.reminder_day.num_hours().to_string(),
        );
        says(
            "last_reminder_minutes",
            limits.reminder_hour.num_minutes().to_string(),
        );
        says("rate_limit_per_minute", d.rate_limits().0.to_string());
        says("rate_limit_burst", d.rate_limits().1.to_string());
        says("log_format", "text".into());
        says(
            "header_timeout_seconds",
            conn.header_timeout.as_secs().to_string(),
        );
        says(
            "idle_timeout_seconds",
            conn.idle_timeout.as_secs().to_string(),
        );
        says("max_connections", conn.max_connections.to_string());
        says(
            "max_connections_per_client",
            conn.max_per_client.to_string(),
        );
        says("worker_interval", d.worker_interval().as_secs().to_string());
        says(
            "room_citizen_early_minutes",
            room.policy.citizen_early.num_minutes().to_string(),
        );
        says(
            "room_operator_early_minutes",
            room.policy.operator_early.num_minutes().to_string(),
        );
        says(
            "room_grace_minutes",
            room.policy.grace.num_minutes().to_string(),
        );
        says(
            "room_heartbeat_seconds",
            room.heartbeat.as_secs().to_string(),
        );
        says(
            "room_hello_seconds",
            room.hello_timeout.as_secs().to_string(),
        );
        says("media_udp", relay.udp_addrs.join(","));
        says("media_tcp", relay.tcp_addrs.join(","));
        says("media_reactors", relay.reactor_threads.to_string());
        says("town_name", crate::town::DEMO_NAME.into());
        says("town_address", crate::town::DEMO_ADDRESS.into());
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
        let c = parse(&["--tls", "off", "--smtp-security", "tls"]);
        assert_eq!(c.tls, Some(TlsMode::Off));
        assert!(!c.https());
        assert_eq!(c.smtp_security, Some(SmtpSecurity::Tls));
        assert_eq!(SmtpSecurity::Tls.default_port(), 465);
        assert!(Config::try_parse_from(["sportello", "--tls", "maybe"]).is_err());
        assert!(Config::try_parse_from(["sportello", "--smtp-security", "ssl"]).is_err());
        for n in ["0", "1001", "many"] {
            assert!(Config::try_parse_from(["sportello", "--smtp-concurrency", n]).is_err());
        }
        for n in ["0", "601", "-1", "20s"] {
            assert!(Config::try_parse_from(["sportello", "--smtp-timeout-seconds", n]).is_err());
        }
        assert_eq!(
            parse(&["--smtp-timeout-seconds", "600"]).smtp_timeout_seconds,
            Some(600)
        );
        assert!(Config::try_parse_from(["sportello", "--log-format", "xml"]).is_err());
        let f: Config = toml::from_str("tls = \"files\"\nsmtp_security = \"none\"").unwrap();
        assert_eq!(f.tls_mode(), TlsMode::Files);
        assert_eq!(f.smtp_security, Some(SmtpSecurity::None));
        assert!(
            Config::default().https(),
            "TLS with a development certificate by default"
        );
        // The public URL's default follows the listening address.
        let c = parse(&["--tls", "off", "--listen", "0.0.0.0:8081"]);
        assert_eq!(c.public_url(), "http://localhost:8081");
        assert_eq!(Config::default().public_url(), "https://localhost:8443");
    }

    /// `resolve` over flags `args` and a working directory `cwd`.
    fn resolve(args: &[&str], cwd: &Path) -> anyhow::Result<Config> {
        Config::resolve(parse(args), cwd)
    }

    #[test]
    fn paths_become_absolute_from_the_file_or_the_working_directory() {
        let root = tempfile::tempdir().unwrap();
        let cwd = root.path().join("somewhere");
        let etc = root.path().join("etc");
        std::fs::create_dir_all(&cwd).unwrap();
        std::fs::create_dir_all(&etc).unwrap();
        // Nothing given: data/ in the working directory.
        let c = resolve(&[], &cwd).unwrap();
        assert_eq!(c.data_dir(), cwd.join("data"));
        assert_eq!(
            c.database_url(),
            format!("sqlite://{}", cwd.join("data/sportello.db").display())
        );
        assert_eq!(c.config, None);
        // On the command line: from the working directory.
        let c = resolve(&["--data-dir", "../stato"], &cwd).unwrap();
        assert!(c.data_dir().is_absolute());
        assert_eq!(c.data_dir().file_name().unwrap(), "stato");
        assert!(c.data_dir().starts_with(&cwd), "{:?}", c.data_dir());
        // In the file: from the file's folder, whatever the working directory.
        let file = etc.join("sportello.toml");
        std::fs::write(
            &file,
            "data_dir = \"dati\"\ndatabase_url = \"sqlite://db/s.db?mode=rwc\"\ntls_cert = \"/abs/cert.pem\"\n",
        )
        .unwrap();
        let c = resolve(&["--config", file.to_str().unwrap()], &cwd).unwrap();
        assert_eq!(c.data_dir(), etc.join("dati"));
        assert_eq!(
            c.database_url(),
            format!("sqlite://{}?mode=rwc", etc.join("db/s.db").display())
        );
        assert_eq!(c.tls_cert, Some(PathBuf::from("/abs/cert.pem")));
        assert_eq!(c.config, Some(file.clone()));
        // A flag still wins over the file, from the working directory.
        let c = resolve(
            &["--config", file.to_str().unwrap(), "--data-dir", "qui"],
            &cwd,
        )
        .unwrap();
        assert_eq!(c.data_dir(), cwd.join("qui"));
        // sportello.toml in the working directory is read without --config.
        let c = resolve(&[], &etc).unwrap();
        assert_eq!(c.config, Some(file));
        assert_eq!(c.data_dir(), etc.join("dati"));
        // Other databases are left as they are.
        assert_eq!(
            absolute_sqlite_url("postgres://u:p@h/db", &cwd),
            "postgres://u:p@h/db"
        );
        assert_eq!(
            absolute_sqlite_url("sqlite::memory:", &cwd),
            "sqlite::memory:"
        );
    }

    #[test]
    fn the_demo_is_on_by_default_only_for_the_embedded_default() {
        let root = tempfile::tempdir().unwrap();
        let cwd = root.path();
        assert!(resolve(&[], cwd).unwrap().demo());
        assert!(!resolve(&["--demo=false"], cwd).unwrap().demo());
        assert!(!resolve(&["--data-dir", "d"], cwd).unwrap().demo());
        assert!(!resolve(&["--database-url", "sqlite://x.db"], cwd)
            .unwrap()
            .demo());
        assert!(resolve(&["--data-dir", "d", "--demo"], cwd).unwrap().demo());
        let file = cwd.join("any.toml");
        std::fs::write(&file, "listen = \"127.0.0.1:8080\"\n").unwrap();
        assert!(!resolve(&["--config", file.to_str().unwrap()], cwd)
            .unwrap()
            .demo());
        std::fs::write(cwd.join("sportello.toml"), "").unwrap();
        assert!(!resolve(&[], cwd).unwrap().demo(), "sportello.toml found");
    }

    #[test]
    fn bad_values_stop_the_load_naming_the_setting() {
        let root = tempfile::tempdir().unwrap();
        let cwd = root.path();
        let file = cwd.join("s.toml");
        let load = |text: &str| {
            std::fs::write(&file, text).unwrap();
            resolve(&["--config", file.to_str().unwrap()], cwd)
                .unwrap_err()
                .to_string()
        };
        let e = load("lisen = \"0.0.0.0:80\"\n");
        assert!(
            e.contains(file.to_str().unwrap()) && e.contains("lisen"),
            "{e}"
        );
        let e = load("max_connections = -1\n");
        assert!(e.contains("max_connections"), "{e}");
        for (text, says) in [
            ("time_zone = \"Mars/Base\"\n", "Mars/Base"),
            ("trusted_proxies = \"nginx\"\n", "trusted_proxies"),
            ("public_url = \"comune.example.it\"\n", "public_url"),
            ("mail_from = \"not an address\"\n", "mail_from"),
            ("privacy_contact = \"the mayor\"\n", "privacy_contact"),
            ("accessibility_contact = \"x@\"\n", "accessibility_contact"),
            (
                "oidc_issuer = \"http://login.example.it\"\noidc_client_id = \"s\"\n",
                "oidc_issuer",
            ),
            (
                "oidc_issuer = \"https://login.example.it\"\n",
                "oidc_client_id",
            ),
            ("town_logo = \"nowhere.png\"\n", "town_logo"),
            ("town_name = \"\"\n", "town_name"),
            ("patron_saint = \"4 ottobre\"\n", "patron_saint"),
            ("patron_saint = \"31/02 San Nessuno\"\n", "patron_saint"),
            ("secret_key = \"short\"\n", "secret key"),
            ("ice_servers = \"{}\"\n", "ice-servers"),
            ("media_ports = \"a-b\"\n", "media-ports"),
            ("start_clock_at = \"tomorrow\"\n", "start-clock-at"),
            ("tls = \"files\"\n", "--tls-cert"),
            ("smtp_concurrency = 0\n", "smtp_concurrency"),
            ("smtp_concurrency = 5000\n", "smtp_concurrency"),
            ("smtp_concurrency = -3\n", "smtp_concurrency"),
            ("smtp_timeout_seconds = 0\n", "smtp_timeout_seconds"),
            ("smtp_timeout_seconds = 86400\n", "smtp_timeout_seconds"),
            ("idle_timeout_seconds = 15\n", "must be longer than room_heartbeat_seconds (15)"),
            (
                "idle_timeout_seconds = 30\nroom_heartbeat_seconds = 40\n",
                "idle_timeout_seconds (30)",
            ),
            ("node_url = \"10.0.0.2:8080\"\n", "node_url must be an address"),
            ("node_url = \"http://10.0.0.2:8080\"\n", "one PostgreSQL database"),
            ("node_id = \"n1\"\n", "node_id needs node_url"),
            (
                "node_url = \"http://10.0.0.2:8080\"\nnode_id = \"a b\"\ndatabase_url = \"postgres://u@db/s\"\n",
                "node_id: letters",
            ),
        ] {
            let e = load(text);
            assert!(e.contains(says), "{text}: {e}");
        }
        let e = resolve(&["--config", "missing.toml"], cwd)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("cannot read") && e.contains("missing.toml"),
            "{e}"
        );
        // Without TLS there is no HTTP/2, and so no idle timeout to weigh against the heartbeat.
        std::fs::write(&file, "tls = \"off\"\nidle_timeout_seconds = 15\n").unwrap();
        assert!(resolve(&["--config", file.to_str().unwrap()], cwd).is_ok());
    }
}
