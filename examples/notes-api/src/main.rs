//! Run the notes-api example: `LATCHKEY_JWKS_URL`, `LATCHKEY_ISSUER` and
//! `LATCHKEY_AUDIENCE` are required; `LATCHKEY_REVOCATION_FEED_URL` and
//! `LATCHKEY_REVOCATION_FEED_SECRET` are optional (both or neither); `NOTES_BIND`
//! defaults to `127.0.0.1:8081`.

use std::sync::Arc;

use anyhow::Context;
use notes_api::{app, Config};
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .init();
    let config = Config::from_vars(|name| std::env::var(name).ok()).map_err(anyhow::Error::msg)?;
    // Fails fast when the JWKS (or the revocation feed) cannot be read.
    let verifier = config
        .verifier()
        .build()
        .await
        .context("cannot set up token verification")?;
    let listener = tokio::net::TcpListener::bind(config.bind)
        .await
        .with_context(|| format!("cannot listen on {}", config.bind))?;
    tracing::info!(
        bind = %config.bind,
        issuer = %config.issuer,
        revocation_feed = config.revocation_feed.is_some(),
        "notes-api listening"
    );
    axum::serve(listener, app(Arc::new(verifier)))
        .with_graceful_shutdown(async {
            // If the signal handler cannot be installed, run until killed.
            if tokio::signal::ctrl_c().await.is_err() {
                std::future::pending::<()>().await;
            }
        })
        .await?;
    Ok(())
}
