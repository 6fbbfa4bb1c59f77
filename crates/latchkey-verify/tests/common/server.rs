//! A stand-in for the Latchkey server: a JWKS and a revocation feed that the test
//! controls, served by axum on 127.0.0.1 with an ephemeral port.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use latchkey_verify::Jwks;
use serde_json::{json, Value};

pub const FEED_SECRET: &str = "feed-secret-for-tests-0123456789";

pub struct ServerState {
    pub jwks: Mutex<Jwks>,
    /// Feed entries, oldest first; `seq` is the index + 1.
    pub entries: Mutex<Vec<Value>>,
    pub page_size: AtomicUsize,
    pub feed_broken: AtomicBool,
    pub jwks_hits: AtomicUsize,
    pub feed_hits: AtomicUsize,
}

pub struct AuthServer {
    pub base: String,
    pub state: Arc<ServerState>,
}

impl AuthServer {
    pub async fn start(jwks: Jwks) -> Self {
        let state = Arc::new(ServerState {
            jwks: Mutex::new(jwks),
            entries: Mutex::new(Vec::new()),
            page_size: AtomicUsize::new(1000),
            feed_broken: AtomicBool::new(false),
            jwks_hits: AtomicUsize::new(0),
            feed_hits: AtomicUsize::new(0),
        });
        let app = Router::new()
            .route("/.well-known/jwks.json", get(serve_jwks))
            .route("/auth/revocations", get(feed))
            .with_state(Arc::clone(&state));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Self { base, state }
    }

    pub fn jwks_url(&self) -> String {
        format!("{}/.well-known/jwks.json", self.base)
    }

    pub fn feed_url(&self) -> String {
        format!("{}/auth/revocations", self.base)
    }

    pub fn set_jwks(&self, jwks: Jwks) {
        *self.state.jwks.lock().unwrap() = jwks;
    }

    /// Append a feed entry; returns its `seq`.
    pub fn revoke(&self, kind: &str, value: &str, expires_at: i64) -> u64 {
        let mut entries = self.state.entries.lock().unwrap();
        let seq = entries.len() as u64 + 1;
        entries.push(json!({ "seq": seq, "kind": kind, "value": value, "expires_at": expires_at }));
        seq
    }

    pub fn jwks_hits(&self) -> usize {
        self.state.jwks_hits.load(Ordering::SeqCst)
    }

    pub fn feed_hits(&self) -> usize {
        self.state.feed_hits.load(Ordering::SeqCst)
    }
}

async fn serve_jwks(State(state): State<Arc<ServerState>>) -> Json<Jwks> {
    state.jwks_hits.fetch_add(1, Ordering::SeqCst);
    Json(state.jwks.lock().unwrap().clone())
}

fn error(status: StatusCode, code: &str) -> Response {
    (status, Json(json!({ "error": code, "code": code }))).into_response()
}

async fn feed(
    State(state): State<Arc<ServerState>>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    state.feed_hits.fetch_add(1, Ordering::SeqCst);
    if state.feed_broken.load(Ordering::SeqCst) {
        return error(StatusCode::SERVICE_UNAVAILABLE, "unavailable");
    }
    let expected = format!("Bearer {FEED_SECRET}");
    if headers.get("authorization").and_then(|v| v.to_str().ok()) != Some(expected.as_str()) {
        return error(StatusCode::UNAUTHORIZED, "unauthorized");
    }
    let Some(after) = query.get("after").and_then(|a| a.parse::<u64>().ok()) else {
        return error(StatusCode::BAD_REQUEST, "bad_after");
    };
    let page_size = state.page_size.load(Ordering::SeqCst);
    let entries: Vec<Value> = state
        .entries
        .lock()
        .unwrap()
        .iter()
        .filter(|e| e["seq"].as_u64().unwrap() > after)
        .take(page_size)
        .cloned()
        .collect();
    let next = entries.last().map_or(after, |e| e["seq"].as_u64().unwrap());
    Json(json!({ "entries": entries, "next": next })).into_response()
}
