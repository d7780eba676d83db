//! `sportello`: see `sportello --help`.

use std::sync::Arc;

use web::{build_state, serve, Clock, Config, OffsetClock};

/// The relay allocates and frees a few buffers per forwarded packet; mimalloc serves them
/// from per-thread pages, faster than the system allocator and with better locality.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cfg = Config::load()?;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| "info,sqlx=warn".into());
    // JSON lines for log collectors, or text for people.
    if cfg.log_format.as_deref() == Some("json") {
        tracing_subscriber::fmt()
            .json()
            .with_env_filter(filter)
            .init();
    } else {
        tracing_subscriber::fmt().with_env_filter(filter).init();
    }
    // Restore works on the files, before anything opens the database.
    if let Some(web::config::Command::Restore { file }) = &cfg.command {
        return restore(&cfg, file);
    }
    let offset = cfg.clock_offset()?;
    let clock: Arc<dyn Clock> = Arc::new(OffsetClock(offset));
    if !offset.is_zero() {
        tracing::warn!(now = %clock.now(), "the server's clock is moved by --start-clock-at: for tests and demonstrations only");
    }
    let state = build_state(&cfg, clock).await?;
    if let Some(web::config::Command::Backup { file }) = &cfg.command {
        anyhow::ensure!(
            state.store.backend() == booking::store::Backend::Sqlite,
            "backup copies the embedded SQLite database; for PostgreSQL use pg_dump"
        );
        anyhow::ensure!(!file.exists(), "{} exists already", file.display());
        state.store.backup_to(file).await?;
        println!("backup written to {}", file.display());
        return Ok(());
    }
    if let Some(web::config::Command::Migrate) = &cfg.command {
        let version = state.store.schema_version().await?;
        println!("database schema at migration {version}");
        return Ok(());
    }
    if let Some(web::config::Command::RoomLink { code }) = &cfg.command {
        let a = state.store.appointment_by_code(code.trim()).await?;
        anyhow::ensure!(
            a.mode == booking::Mode::Video,
            "{code} is not a video appointment"
        );
        println!("citizen:  {}", state.store.links.join_url(a.id));
        println!("operator: {}", state.store.links.operator_join_url(a.id));
        return Ok(());
    }
    if let Some(web::config::Command::Admin { action }) = &cfg.command {
        return admin(&state, action).await;
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

async fn admin(state: &web::AppState, action: &web::config::AdminCommand) -> anyhow::Result<()> {
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
                state.now(),
            );
            let (_, password) = state.accounts.create(&new, &entry, state.now()).await?;
            println!("administrator: {}", staff::accounts::normalize_email(email));
            println!("provisional password: {password}");
            println!(
                "log in at {}/ufficio and choose your own password",
                state.store.links.base_url
            );
        }
        AdminCommand::ResetPassword { email } => {
            let normalized = staff::accounts::normalize_email(email);
            let account = state
                .accounts
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
                state.now(),
            );
            let password = state.accounts.reset_password(account.id, &entry).await?;
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
    let db = std::path::PathBuf::from(db);
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
