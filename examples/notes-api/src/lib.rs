//! notes-api: an **example** service protected by Latchkey access tokens through
//! `latchkey-verify` (feature `axum`). It is a demonstration, not a product: notes live
//! in memory and vanish on restart.
//!
//! - `GET /notes`: the caller's notes (any valid access token);
//! - `POST /notes` with `{"text": "..."}`: add a note for the caller (201);
//! - `GET /admin/notes`: every note (role `admin`, checked by `VerifyLayer`);
//! - `GET /healthz`: no token needed; what the verifier knows (keys, revocation cursor,
//!   whether the revocation state is stale); 503 while the verifier cannot do its job.
//!
//! Refusals use the Latchkey error format `{"error": "...", "code": "..."}`: 401
//! `token_missing` / `token_invalid` / `token_expired` / `token_revoked` with a
//! `WWW-Authenticate: Bearer` challenge, 403 `insufficient_role`, 400 `invalid_note`,
//! 503 `revocation_state_stale` while the revocation feed has been unreadable for longer
//! than the verifier's maximum staleness.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRef, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use latchkey_verify::axum::{Claims, VerifyLayer};
use latchkey_verify::{RemoteVerifier, RemoteVerifierBuilder};
use serde::{Deserialize, Serialize};
use serde_json::json;

/// Longest note text accepted, in characters.
pub const MAX_NOTE_CHARS: usize = 10_000;
/// Most notes one user may keep (the store is in memory).
pub const MAX_NOTES_PER_USER: usize = 1_000;

/// A note.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Note {
    /// Unique id.
    pub id: u64,
    /// The `sub` of the user who wrote it.
    pub owner: String,
    /// The text.
    pub text: String,
    /// When it was written, Unix seconds.
    pub created_at: i64,
}

/// The body of `POST /notes`.
#[derive(Debug, Clone, Deserialize)]
pub struct NewNote {
    /// The text, 1 to [`MAX_NOTE_CHARS`] characters.
    pub text: String,
}

/// The in-memory note store: notes by owner. Example only.
#[derive(Debug, Default)]
struct Notes {
    next_id: u64,
    by_owner: HashMap<String, Vec<Note>>,
}

/// The router state: the verifier (found by the `Claims` extractor through `FromRef`)
/// and the notes.
#[derive(Clone)]
struct AppState {
    verifier: Arc<RemoteVerifier>,
    notes: Arc<Mutex<Notes>>,
}

impl FromRef<AppState> for Arc<RemoteVerifier> {
    fn from_ref(state: &AppState) -> Self {
        Arc::clone(&state.verifier)
    }
}

impl AppState {
    fn notes(&self) -> std::sync::MutexGuard<'_, Notes> {
        self.notes.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The service's routes, every one but `/healthz` protected by `verifier`.
pub fn app(verifier: Arc<RemoteVerifier>) -> Router {
    let state = AppState {
        verifier: Arc::clone(&verifier),
        notes: Arc::default(),
    };
    let admin = Router::new()
        .route("/admin/notes", get(all_notes))
        .route_layer(VerifyLayer::new(verifier).require_role("admin"));
    Router::new()
        .route("/notes", get(my_notes).post(add_note))
        .merge(admin)
        .route("/healthz", get(health))
        .with_state(state)
}

fn error(status: StatusCode, code: &str, message: &str) -> Response {
    (status, Json(json!({ "error": message, "code": code }))).into_response()
}

async fn my_notes(claims: Claims, State(state): State<AppState>) -> Json<Vec<Note>> {
    let notes = state.notes();
    Json(notes.by_owner.get(&claims.sub).cloned().unwrap_or_default())
}

async fn add_note(
    claims: Claims,
    State(state): State<AppState>,
    body: Result<Json<NewNote>, JsonRejection>,
) -> Response {
    let Ok(Json(new)) = body else {
        return error(
            StatusCode::BAD_REQUEST,
            "invalid_note",
            "the body must be JSON: {\"text\": \"...\"}",
        );
    };
    let text = new.text.trim();
    if text.is_empty() || text.chars().count() > MAX_NOTE_CHARS {
        return error(
            StatusCode::BAD_REQUEST,
            "invalid_note",
            &format!("a note has 1 to {MAX_NOTE_CHARS} characters"),
        );
    }
    let mut notes = state.notes();
    let Notes { next_id, by_owner } = &mut *notes;
    let mine = by_owner.entry(claims.sub.clone()).or_default();
    if mine.len() >= MAX_NOTES_PER_USER {
        return error(
            StatusCode::CONFLICT,
            "too_many_notes",
            &format!("a user keeps at most {MAX_NOTES_PER_USER} notes in this example"),
        );
    }
    *next_id += 1;
    let note = Note {
        id: *next_id,
        owner: claims.sub.clone(),
        text: text.to_owned(),
        created_at: unix_now(),
    };
    mine.push(note.clone());
    (StatusCode::CREATED, Json(note)).into_response()
}

async fn all_notes(State(state): State<AppState>) -> Json<Vec<Note>> {
    let notes = state.notes();
    let mut all: Vec<Note> = notes.by_owner.values().flatten().cloned().collect();
    all.sort_by_key(|note| note.id);
    Json(all)
}

async fn health(State(state): State<AppState>) -> Response {
    let status = state.verifier.status();
    let healthy = state.verifier.is_healthy();
    let body = Json(json!({
        "status": if healthy { "ok" } else { "unhealthy" },
        "keys": status.keys,
        "revocation_cursor": status.revocation_cursor,
        "revocations_stale": status.revocations_stale,
    }));
    if healthy {
        body.into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, body).into_response()
    }
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// The service's settings, from the environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// `LATCHKEY_JWKS_URL`, e.g. `http://127.0.0.1:8080/.well-known/jwks.json`.
    pub jwks_url: String,
    /// `LATCHKEY_ISSUER`.
    pub issuer: String,
    /// `LATCHKEY_AUDIENCE`.
    pub audience: String,
    /// `LATCHKEY_REVOCATION_FEED_URL` and `LATCHKEY_REVOCATION_FEED_SECRET`, both or
    /// neither.
    pub revocation_feed: Option<(String, String)>,
    /// `NOTES_BIND`, default `127.0.0.1:8081`.
    pub bind: SocketAddr,
    /// `LATCHKEY_ALLOW_INSECURE_HTTP=true`: accept plain `http://` URLs to hosts that are
    /// not loopback (default `false`; see `RemoteVerifierBuilder::allow_insecure_http`).
    pub allow_insecure_http: bool,
}

impl Config {
    /// Read the settings through `var` (`std::env::var` in `main`).
    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> Result<Self, String> {
        let required = |name: &str| {
            var(name)
                .filter(|value| !value.trim().is_empty())
                .ok_or_else(|| format!("{name} must be set"))
        };
        let feed_url = var("LATCHKEY_REVOCATION_FEED_URL").filter(|v| !v.is_empty());
        let feed_secret = var("LATCHKEY_REVOCATION_FEED_SECRET").filter(|v| !v.is_empty());
        let revocation_feed = match (feed_url, feed_secret) {
            (Some(url), Some(secret)) => Some((url, secret)),
            (None, None) => None,
            _ => {
                return Err("set both LATCHKEY_REVOCATION_FEED_URL and \
                            LATCHKEY_REVOCATION_FEED_SECRET, or neither"
                    .to_owned())
            }
        };
        let allow_insecure_http = match var("LATCHKEY_ALLOW_INSECURE_HTTP").as_deref() {
            None | Some("" | "false" | "0") => false,
            Some("true" | "1") => true,
            Some(other) => {
                return Err(format!(
                    "LATCHKEY_ALLOW_INSECURE_HTTP {other:?} is not true or false"
                ))
            }
        };
        let bind = var("NOTES_BIND").unwrap_or_else(|| "127.0.0.1:8081".to_owned());
        let bind = bind
            .parse()
            .map_err(|e| format!("NOTES_BIND {bind:?} is not an address: {e}"))?;
        Ok(Self {
            jwks_url: required("LATCHKEY_JWKS_URL")?,
            issuer: required("LATCHKEY_ISSUER")?,
            audience: required("LATCHKEY_AUDIENCE")?,
            revocation_feed,
            bind,
            allow_insecure_http,
        })
    }

    /// A verifier builder with these settings (revocations polled every second).
    pub fn verifier(&self) -> RemoteVerifierBuilder {
        let builder = RemoteVerifier::builder()
            .jwks_url(&self.jwks_url)
            .issuer(&self.issuer)
            .audience(&self.audience)
            .allow_insecure_http(self.allow_insecure_http);
        match &self.revocation_feed {
            Some((url, secret)) => builder
                .revocation_feed(url, secret)
                .revocation_poll_interval(Duration::from_secs(1)),
            None => builder,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |name| {
            pairs
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| (*v).to_owned())
        }
    }

    const BASE: [(&str, &str); 3] = [
        (
            "LATCHKEY_JWKS_URL",
            "http://127.0.0.1:8080/.well-known/jwks.json",
        ),
        ("LATCHKEY_ISSUER", "http://127.0.0.1:8080"),
        ("LATCHKEY_AUDIENCE", "notes"),
    ];

    #[test]
    fn config_reads_the_environment_with_defaults() {
        let config = Config::from_vars(vars(&BASE)).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(config.bind.to_string(), "127.0.0.1:8081");
        assert_eq!(config.revocation_feed, None);
        assert_eq!(config.audience, "notes");

        let mut with_feed = BASE.to_vec();
        with_feed.push((
            "LATCHKEY_REVOCATION_FEED_URL",
            "http://127.0.0.1:8080/auth/revocations",
        ));
        assert!(Config::from_vars(vars(&with_feed)).is_err());
        with_feed.push(("LATCHKEY_REVOCATION_FEED_SECRET", "s3cret"));
        with_feed.push(("NOTES_BIND", "0.0.0.0:9000"));
        let config = Config::from_vars(vars(&with_feed)).unwrap_or_else(|e| panic!("{e}"));
        assert!(config.revocation_feed.is_some());
        assert_eq!(config.bind.port(), 9000);

        assert!(Config::from_vars(vars(&BASE[..2])).is_err());
        let mut bad_bind = BASE.to_vec();
        bad_bind.push(("NOTES_BIND", "nowhere"));
        assert!(Config::from_vars(vars(&bad_bind)).is_err());

        assert!(!config.allow_insecure_http);
        let mut insecure = BASE.to_vec();
        insecure.push(("LATCHKEY_ALLOW_INSECURE_HTTP", "true"));
        let config = Config::from_vars(vars(&insecure)).unwrap_or_else(|e| panic!("{e}"));
        assert!(config.allow_insecure_http);
        let mut bad = BASE.to_vec();
        bad.push(("LATCHKEY_ALLOW_INSECURE_HTTP", "yes please"));
        assert!(Config::from_vars(vars(&bad)).is_err());
    }

    #[tokio::test]
    async fn a_plain_http_url_to_another_host_needs_the_opt_in() {
        let mut vars_list = BASE.to_vec();
        vars_list[0] = (
            "LATCHKEY_JWKS_URL",
            "http://auth.example.com/.well-known/jwks.json",
        );
        let config = Config::from_vars(vars(&vars_list)).unwrap_or_else(|e| panic!("{e}"));
        let refused = config.verifier().build().await;
        assert!(
            matches!(
                refused,
                Err(latchkey_verify::RemoteError::InsecureUrl { .. })
            ),
            "{refused:?}"
        );
    }
}
