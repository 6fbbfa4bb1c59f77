//! The ceiling: a bare axum server whose one handler, `GET /auth/me`, verifies the
//! bearer JWT with `latchkey_verify::verify_access_token` against Latchkey's JWKS and
//! answers a small JSON body, and does nothing else (no revocation check, no middleware).
//! What Latchkey's protected route can at best reach on the same core.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use latchkey_verify::{verify_access_token, Jwks, KeySet, Validation};
use serde_json::json;

/// Options of the `ceiling` subcommand.
#[derive(Debug, clap::Args)]
pub(crate) struct CeilingOptions {
    /// Address to listen on.
    #[arg(long)]
    bind: SocketAddr,
    /// The JWKS (as served by Latchkey at `/.well-known/jwks.json`).
    #[arg(long)]
    jwks_file: PathBuf,
    /// The expected `iss`.
    #[arg(long)]
    issuer: String,
    /// The expected `aud`.
    #[arg(long)]
    audience: String,
}

struct Verifier {
    keys: KeySet,
    validation: Validation,
}

/// Serve until killed. The runtime is tokio's default multi-threaded one, like
/// Latchkey's, so under `taskset -c 0` it has one worker.
pub(crate) fn run(options: &CeilingOptions) -> Result<()> {
    let jwks: Jwks = serde_json::from_slice(
        &std::fs::read(&options.jwks_file)
            .with_context(|| format!("reading {}", options.jwks_file.display()))?,
    )
    .context("the JWKS file is not a JWKS")?;
    let verifier = Arc::new(Verifier {
        keys: KeySet::from_jwks(&jwks),
        validation: Validation {
            issuer: options.issuer.clone(),
            audience: options.audience.clone(),
            leeway: Duration::from_secs(30),
            max_lifetime: None,
        },
    });
    let app = Router::new()
        .route("/auth/me", get(me))
        .with_state(verifier);
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(async {
            let listener = tokio::net::TcpListener::bind(options.bind).await?;
            println!("ceiling listening on http://{}", listener.local_addr()?);
            axum::serve(listener, app).await?;
            Ok(())
        })
}

async fn me(State(verifier): State<Arc<Verifier>>, headers: HeaderMap) -> Response {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
    match verify_access_token(token, &verifier.keys, &verifier.validation, now) {
        Ok(claims) => Json(json!({
            "user": { "id": claims.sub, "roles": claims.roles },
            "session": { "id": claims.sid },
            "token": { "issued_at": claims.iat, "expires_at": claims.exp },
        }))
        .into_response(),
        Err(_) => (
            StatusCode::UNAUTHORIZED,
            Json(json!({ "error": "invalid token" })),
        )
            .into_response(),
    }
}
