//! The durability claim under SIGKILL: a rotation is answered only once it is committed.
//!
//! Refresh chains run against the real binary, which is killed with SIGKILL at a random
//! moment, many times, and restarted on the same database. After each restart every
//! chain presents the last refresh token its client was given: that must be accepted,
//! either as the live token or (when the kill cut off the answer to a rotation the store
//! had already committed) as a spent token inside the grace window, which hands back the
//! same successor. A rotation answered but lost would show as `refresh_token_invalid`;
//! a rotation half-applied would show as reuse and a revoked session. At the end, a
//! token two rotations back must be refused as reuse (and end its session).
//!
//! A process kill does not drop what the OS already holds, so this proves the ordering
//! (no answer before the commit), not the fsync; `synchronous=FULL` (SQLite) and
//! `synchronous_commit=on` (PostgreSQL) carry the rest, as SECURITY.md says.
//!
//! `LATCHKEY_CRASH_KILLS` (default 10) kills per backend; `LATCHKEY_CRASH_SEED` repeats
//! a run's kill moments (the seed is printed).

use std::time::Duration;

use futures::future::join_all;
use latchkey_store::testing::TestDatabase;
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::*;
use crate::replicas::{login, me, register, Replica};

const CHAINS: usize = 24;

/// One client's refresh chain, as far as the client knows it.
#[derive(Debug)]
struct Chain {
    email: String,
    /// The newest refresh token the client was given.
    last: String,
    /// The one it replaced, and the one before that (spent; no longer a predecessor).
    previous: Option<String>,
    older: Option<String>,
    /// Rotations the client saw answered.
    answered: u64,
    /// Requests the server had taken when it was killed (outcome unknown to the client):
    /// the connection broke, rather than being refused.
    cut_off: u64,
}

impl Chain {
    /// The client was answered `next` for `last`.
    fn rotated(&mut self, next: String) {
        self.older = self.previous.take();
        self.previous = Some(std::mem::replace(&mut self.last, next));
        self.answered += 1;
    }
}

/// The grace window is longer than a restart takes, so a cut-off rotation is always
/// still inside it when the client tries again.
fn server_settings() -> [(&'static str, &'static str); 1] {
    [("LATCHKEY_REUSE_GRACE", "60s")]
}

/// Refresh until a request fails at the transport (the server was killed).
async fn drive(client: reqwest::Client, server: String, mut chain: Chain) -> Chain {
    loop {
        let sent = client
            .post(format!("{server}/auth/refresh"))
            .json(&json!({ "refresh_token": chain.last }))
            .send()
            .await;
        let response = match sent {
            Ok(response) => response,
            // Sent after the kill: nothing reached a server.
            Err(e) if e.is_connect() => return chain,
            Err(_) => {
                chain.cut_off += 1;
                return chain;
            }
        };
        let status = response.status();
        let Ok(body) = response.json::<Value>().await else {
            chain.cut_off += 1;
            return chain;
        };
        assert_eq!(
            status,
            StatusCode::OK,
            "{}: a live chain refused while the server ran: {body}",
            chain.email
        );
        chain.rotated(Tokens::from(body).refresh);
    }
}

/// After a restart: the last token each client was given still works, and so does the
/// session it belongs to.
async fn check_after_restart(client: &reqwest::Client, server: &Replica, chains: &mut [Chain]) {
    for chain in chains.iter_mut() {
        let response = client
            .post(server.url("/auth/refresh"))
            .json(&json!({ "refresh_token": chain.last }))
            .send()
            .await
            .unwrap();
        let status = response.status();
        let body: Value = response.json().await.unwrap();
        assert_eq!(
            status,
            StatusCode::OK,
            "{} after a kill ({} rotations answered before it): the last token the client \
             was given was refused: {body}",
            chain.email,
            chain.answered
        );
        let tokens = Tokens::from(body);
        assert_eq!(
            me(client, server, &tokens.access).await,
            StatusCode::OK,
            "{}: the session survived the kill",
            chain.email
        );
        chain.rotated(tokens.refresh);
    }
}

/// Nothing but the last token and its predecessor works: a token two rotations back is
/// reuse, which ends the session, so the last token stops working too.
async fn check_nothing_else_works(client: &reqwest::Client, server: &Replica, chains: &[Chain]) {
    for chain in chains {
        let older = chain.older.as_ref().expect("every chain rotated twice");
        let response = client
            .post(server.url("/auth/refresh"))
            .json(&json!({ "refresh_token": older }))
            .send()
            .await
            .unwrap();
        assert_error(response, StatusCode::UNAUTHORIZED, "refresh_token_reused").await;
        let response = client
            .post(server.url("/auth/refresh"))
            .json(&json!({ "refresh_token": chain.last }))
            .send()
            .await
            .unwrap();
        assert_error(response, StatusCode::UNAUTHORIZED, "session_revoked").await;
    }
}

async fn kill_and_restart(database_url: &str, label: &str) {
    let kills: usize = std::env::var("LATCHKEY_CRASH_KILLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10);
    let seed: u64 = std::env::var("LATCHKEY_CRASH_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| fastrand::u64(..));
    eprintln!("crash test on {label}: {kills} kills, LATCHKEY_CRASH_SEED={seed}");
    let mut rng = fastrand::Rng::with_seed(seed);
    let settings = server_settings();
    // A new connection per request: after a kill, a request fails to connect, so a
    // broken connection means the server had taken the request (never a stale pooled
    // connection).
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();

    let mut server = Replica::start(database_url, None, &settings).await;
    let mut chains = Vec::with_capacity(CHAINS);
    for i in 0..CHAINS {
        let email = format!("chain{i}@example.com");
        register(&client, &server, &email).await;
        let tokens = login(&client, &server, &email).await;
        chains.push(Chain {
            email,
            last: tokens.refresh,
            previous: None,
            older: None,
            answered: 0,
            cut_off: 0,
        });
    }

    for _ in 0..kills {
        let running = chains
            .drain(..)
            .map(|chain| tokio::spawn(drive(client.clone(), server.address.clone(), chain)))
            .collect::<Vec<_>>();
        tokio::time::sleep(Duration::from_millis(rng.u64(100..=600))).await;
        server.stop().await;
        chains = join_all(running)
            .await
            .into_iter()
            .map(|joined| joined.expect("a chain held"))
            .collect();
        server = Replica::start(database_url, None, &settings).await;
        check_after_restart(&client, &server, &mut chains).await;
    }
    check_nothing_else_works(&client, &server, &chains).await;
    server.stop().await;

    let answered: u64 = chains.iter().map(|c| c.answered).sum();
    let cut_off: u64 = chains.iter().map(|c| c.cut_off).sum();
    eprintln!(
        "crash test on {label}: {answered} rotations answered, {cut_off} requests in flight \
         cut off by kills"
    );
    // Kills landed while requests were in flight, so the unknown-outcome case (the one
    // the grace window exists for) was exercised, not just clean restarts.
    assert!(
        cut_off >= kills as u64,
        "kills cut off {cut_off} requests in flight: the test did not kill mid-request"
    );
    assert!(answered > 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_answers_a_rotation_only_once_it_survives_sigkill() {
    let db = TestDatabase::sqlite().unwrap();
    kill_and_restart(db.url(), "SQLite (synchronous=FULL)").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_answers_a_rotation_only_once_it_survives_sigkill() {
    let Some(db) = TestDatabase::postgres().await else {
        return;
    };
    kill_and_restart(db.url(), "PostgreSQL").await;
}
