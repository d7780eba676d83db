//! `sportello`: see `sportello --help`.

use std::sync::Arc;

use web::config::{Command, Create, LogFormat};
use web::{build_state, serve, Clock, Config, OffsetClock};

/// The relay allocates and frees a few buffers per forwarded packet; mimalloc serves them
/// from per-thread pages, faster than the system allocator and with better locality.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cfg = Config::load()?;
    let filter = tracing_subscriber::EnvFilter::try_new(web::config::log_filter(
        std::env::var("RUST_LOG").ok().as_deref(),
    ))
    .unwrap_or_else(|_| web::config::log_filter(None).into());
    // JSON lines for log collectors, or text for people.
    if cfg.log_format() == LogFormat::Json {
        tracing_subscriber::fmt()
            .json()
            .with_env_filter(filter)
            .init();
    } else {
        tracing_subscriber::fmt().with_env_filter(filter).init();
    }
    if let Some(dir) = &cfg.languages_dir {
        tracing::info!(languages = ?booking::i18n::Lang::all().map(|l| l.code()).collect::<Vec<_>>(), "languages, with those of {}", dir.display());
    }
    let offset = cfg.clock_offset()?;
    let clock: Arc<dyn Clock> = Arc::new(OffsetClock(offset));
    match &cfg.command {
        // Restore works on the files, before anything opens the database.
        Some(Command::Restore { file }) => return restore(&cfg, file),
        Some(Command::Init) => return init(&cfg).await,
        Some(command) => return maintenance(&cfg, command, clock).await,
        None => {}
    }
    if !offset.is_zero() {
        tracing::warn!(now = %clock.now(), "the server's clock is moved by --start-clock-at: for tests and demonstrations only");
    }
    match &cfg.config {
        Some(file) => tracing::info!("configuration file: {}", file.display()),
        None => tracing::info!("no configuration file: flags, environment and defaults"),
    }
    tracing::info!(
        "data folder: {}; database: {}",
        cfg.data_dir().display(),
        web::state::shown_url(&cfg.database_url())
    );
    let state = build_state(&cfg, clock).await?;
    // The default name is the demo comune's: right for the demo, a mistake anywhere else.
    if cfg.town_name.is_none() && state.store.setting("demo").await?.is_none() {
        tracing::warn!(
            "town_name is not set: every page says \"{}\"; set town_name, town_address, town_logo, privacy_contact and accessibility_contact",
            state.town.name
        );
    }
    if state.accounts.count().await? == 0 {
        tracing::info!("no staff account yet: create the first administrator with `sportello admin create --email you@example.org` (it prints a provisional password), then log in at {}/ufficio", cfg.public_url());
    }
    let http = cfg.listen();
    let http_listener = tokio::net::TcpListener::bind(&http)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {http}: {e}"))?;
    let admin = cfg.admin_listen();
    let admin_listener = tokio::net::TcpListener::bind(&admin)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {admin} (admin_listen): {e}"))?;
    let admin_addr = admin_listener.local_addr()?;
    if !admin_addr.ip().is_loopback() {
        tracing::warn!("admin_listen {admin_addr} is not a loopback address: the local mailbox and /metrics answer whoever reaches it");
    }
    let mailbox = if state.mailer.is_local() {
        format!("local mailbox at http://{admin_addr}/posta")
    } else {
        "SMTP".to_string()
    };
    let administration = format!("metrics at http://{admin_addr}/metrics");
    let limits = cfg.connection_limits()?;
    let listeners = match cfg.tls_source()? {
        None => {
            tracing::info!(
                "Sportello at {} (HTTP on {http}, no TLS); emails: {mailbox}; {administration}",
                cfg.public_url()
            );
            web::app::Listeners {
                public: http_listener,
                certificate: None,
                admin: admin_listener,
            }
        }
        Some(source) => {
            let certificate = certs::Certificate::load(source)?;
            let https = cfg.https_listen();
            let https_listener = tokio::net::TcpListener::bind(&https)
                .await
                .map_err(|e| anyhow::anyhow!("cannot listen on {https}: {e}"))?;
            if let certs::Source::Development { names, .. } = certificate.source() {
                tracing::info!(
                    "development certificate for {}: browsers will ask to accept it once",
                    names.join(", ")
                );
            }
            tracing::info!(
                "Sportello at {} (HTTPS on {https}, HTTP on {http} redirects); emails: {mailbox}; {administration}",
                cfg.public_url()
            );
            let origin = cfg.public_url();
            tokio::spawn(async move {
                let _ = axum::serve(http_listener, web::tls::redirect_router(origin)).await;
            });
            web::app::Listeners {
                public: https_listener,
                certificate: Some(certificate),
                admin: admin_listener,
            }
        }
    };
    serve(state, listeners, limits, cfg.worker_interval()).await
}

/// Makes a new installation (see `Command::Init`): nothing is made if one is there already.
async fn init(cfg: &Config) -> anyhow::Result<()> {
    let url = cfg.database_url();
    let shown = web::state::shown_url(&url);
    if let Some(version) = booking::Store::installed(&url).await? {
        anyhow::bail!(
            "there is a Sportello installation at {shown} already (schema at migration {version}): nothing changed"
        );
    }
    std::fs::create_dir_all(cfg.data_dir()).map_err(|e| {
        anyhow::anyhow!(
            "cannot make the data folder {}: {e}",
            cfg.data_dir().display()
        )
    })?;
    let key_was_there = cfg.secret_key.is_some() || cfg.secret_key_file().exists();
    let store = web::state::open_store(cfg, Create::IfMissing).await?;
    let version = store.schema_version().await?;
    let config = cfg
        .config
        .as_ref()
        .map(|f| format!("--config {} ", f.display()))
        .unwrap_or_else(|| format!("--data-dir {} ", cfg.data_dir().display()));
    println!("A new Sportello installation, empty (no demo comune):");
    println!("  data folder: {}", cfg.data_dir().display());
    println!("  database:    {shown} (schema at migration {version})");
    match (&cfg.secret_key, key_was_there) {
        (Some(_), _) => println!("  secret key:  the configured secret_key"),
        (None, true) => println!(
            "  secret key:  {} (it was there already)",
            cfg.secret_key_file().display()
        ),
        (None, false) => println!(
            "  secret key:  {} (new; back it up with the database: it signs every link sent)",
            cfg.secret_key_file().display()
        ),
    }
    println!();
    println!("Next:");
    println!("  1. Set the town's details and the service's address in the configuration file");
    println!("     (see docs/deploy.md): town_name, town_address, town_logo, privacy_contact,");
    println!("     accessibility_contact, public_url, and smtp_host with mail_from for email.");
    println!("  2. Make the first administrator (it prints a provisional password):");
    println!("       sportello {config}admin create --email you@comune.example.it");
    println!("  3. Start the server:");
    println!("       sportello {}", config.trim_end());
    println!(
        "  4. Log in at {}/ufficio and create the offices, their calendars and services.",
        cfg.public_url()
    );
    Ok(())
}

/// The commands that work on an installation: they never make one (see `open_store`).
async fn maintenance(cfg: &Config, command: &Command, clock: Arc<dyn Clock>) -> anyhow::Result<()> {
    let store = web::state::open_store(cfg, Create::Never).await?;
    match command {
        Command::Backup { file } => {
            anyhow::ensure!(
                store.backend() == booking::store::Backend::Sqlite,
                "backup copies the embedded SQLite database; for PostgreSQL use pg_dump"
            );
            anyhow::ensure!(!file.exists(), "{} exists already", file.display());
            store.backup_to(file).await?;
            println!("backup written to {}", file.display());
        }
        Command::Migrate => {
            let version = store.schema_version().await?;
            println!("database schema at migration {version}");
        }
        Command::RoomLink { code } => {
            let a = store.appointment_by_code(code.trim()).await?;
            anyhow::ensure!(
                a.mode == booking::Mode::Video,
                "{code} is not a video appointment"
            );
            println!("citizen:  {}", store.links.join_url(a.id));
            println!("operator: {}", store.links.operator_join_url(a.id));
        }
        Command::Admin { action } => {
            let accounts = staff::Accounts::new(store.pool().clone());
            admin(&store, &accounts, clock.now(), action).await?;
        }
        Command::Init | Command::Restore { .. } => unreachable!("handled before"),
    }
    Ok(())
}

async fn admin(
    store: &booking::Store,
    accounts: &staff::Accounts,
    now: chrono::DateTime<chrono::Utc>,
    action: &web::config::AdminCommand,
) -> anyhow::Result<()> {
    use web::config::AdminCommand;
    match action {
        AdminCommand::Create { email, name } => {
            let new = staff::NewAccount {
                email: email.clone(),
                name: name.clone(),
                role: staff::Role::Admin,
                offices: Vec::new(),
                operator_id: None,
            };
            let entry = booking::audit::Entry::by_command_line(
                "account_creato",
                "account",
                None,
                "admin",
                now,
            );
            let (_, password) = accounts.create(&new, &entry, now).await?;
            println!("administrator: {}", staff::accounts::normalize_email(email));
            println!("provisional password: {password}");
            println!(
                "log in at {}/ufficio and choose your own password",
                store.links.base_url
            );
        }
        AdminCommand::ResetPassword { email } => {
            let normalized = staff::accounts::normalize_email(email);
            let account = accounts
                .list()
                .await?
                .into_iter()
                .find(|a| a.email == normalized)
                .ok_or_else(|| anyhow::anyhow!("no account with email {normalized}"))?;
            let entry = booking::audit::Entry::by_command_line(
                "password_reimpostata",
                "account",
                Some(account.id),
                "",
                now,
            );
            let password = accounts.reset_password(account.id, &entry).await?;
            println!("provisional password: {password}");
        }
    }
    Ok(())
}

/// Puts a backup in place of the SQLite database (the server must be stopped); the database it
/// replaces, with its journal files, is moved aside with the time in its name.
fn restore(cfg: &Config, file: &std::path::Path) -> anyhow::Result<()> {
    let url = cfg.database_url();
    let Some(db) = url.strip_prefix("sqlite://") else {
        anyhow::bail!(
            "restore puts back the embedded SQLite database; for PostgreSQL use pg_restore"
        );
    };
    let db = std::path::PathBuf::from(db.split('?').next().unwrap_or(db));
    if let Some(folder) = db
        .parent()
        .filter(|f| !f.as_os_str().is_empty() && !f.is_dir())
    {
        anyhow::bail!(
            "the data folder {} does not exist: make it and put back the secret.key saved with \
             the backup, or point to the installation with --config or --data-dir",
            folder.display()
        );
    }
    let mut head = [0u8; 16];
    std::io::Read::read_exact(&mut std::fs::File::open(file)?, &mut head)?;
    anyhow::ensure!(
        &head == b"SQLite format 3\0",
        "{} is not a SQLite database",
        file.display()
    );
    let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%SZ");
    for suffix in ["", "-wal", "-shm"] {
        let current = std::path::PathBuf::from(format!("{}{suffix}", db.display()));
        if current.exists() {
            let aside = format!("{}.before-restore-{stamp}", current.display());
            std::fs::rename(&current, &aside)?;
            if suffix.is_empty() {
                println!("the database it replaces is now {aside}");
            }
        }
    }
    std::fs::copy(file, &db)?;
    println!("restored {} into {}", file.display(), db.display());
    Ok(())
}
