//! `sportello`: see `sportello --help`.

use std::sync::Arc;

use web::{build_state, serve, Clock, Config, OffsetClock};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,sqlx=warn".into()),
        )
        .init();
    let cfg = Config::load()?;
    let offset = cfg.clock_offset()?;
    let clock: Arc<dyn Clock> = Arc::new(OffsetClock(offset));
    if !offset.is_zero() {
        tracing::warn!(now = %clock.now(), "the server's clock is moved by --start-clock-at: for tests and demonstrations only");
    }
    let state = build_state(&cfg, clock).await?;
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
    let listen = cfg.listen();
    let listener = tokio::net::TcpListener::bind(&listen)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {listen}: {e}"))?;
    tracing::info!(
        "Sportello at {} (listening on {listen}); emails: {}",
        cfg.public_url(),
        if state.mailer.is_local() {
            format!("local mailbox at {}/posta", cfg.public_url())
        } else {
            "SMTP".to_string()
        }
    );
    serve(state, listener, cfg.worker_interval()).await
}
