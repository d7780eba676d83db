//! `sportello`: see `sportello --help`.

use std::sync::Arc;

use web::{build_state, serve, Config, SystemClock};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,sqlx=warn".into()),
        )
        .init();
    let cfg = Config::load()?;
    let state = build_state(&cfg, Arc::new(SystemClock)).await?;
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
