//! Load against the second peer, better-auth (`bench/peers/better-auth`), and the
//! request shapes it needs: a generic closed loop (each worker one keep-alive
//! connection, its next request sent when the answer is read) over better-auth's routes,
//! and the set-up that signs users up and in.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use serde_json::{json, Value};
use tokio::task::JoinSet;

use crate::api::Creds;
use crate::client::{Conn, Response};
use crate::scenarios::Timing;
use crate::stats::{Recorder, Summary, Window};

/// better-auth's sign-up route.
pub(crate) const SIGN_UP: &str = "/api/auth/sign-up/email";
/// better-auth's sign-in route.
pub(crate) const SIGN_IN: &str = "/api/auth/sign-in/email";
/// The session check (`getSession`), with the session token as a bearer token.
pub(crate) const GET_SESSION: &str = "/api/auth/get-session";
/// The JWT plugin's route that signs a new JWT for the session: the client's refresh.
pub(crate) const TOKEN: &str = "/api/auth/token";
/// The peer's resource route: verifies the JWT with jose against the served JWKS.
pub(crate) const RESOURCE: &str = "/api/resource";

/// One request of a closed loop.
#[derive(Debug, Clone)]
pub(crate) enum Request {
    /// `GET path` with a bearer token.
    Get(&'static str, Arc<str>),
    /// `POST path` with a JSON body.
    Post(&'static str, Vec<u8>),
}

/// `connections` workers each sending `request(worker, n)` as its `n`th request, until
/// the window closes; an answer counts when `ok` says so.
pub(crate) async fn closed_loop<R, C>(
    addr: SocketAddr,
    connections: usize,
    timing: Timing,
    request: R,
    ok: C,
) -> Summary
where
    R: Fn(usize, u64) -> Request + Send + Sync + 'static,
    C: Fn(&Response) -> bool + Send + Sync + 'static,
{
    let (request, ok) = (Arc::new(request), Arc::new(ok));
    let window = Window::starting_now(timing.warmup, timing.duration);
    let mut set = JoinSet::new();
    for worker in 0..connections {
        let (request, ok) = (request.clone(), ok.clone());
        set.spawn(async move {
            let mut conn = Conn::new(addr);
            let mut recorder = Recorder::default();
            let mut n = 0;
            while window.open() {
                let started = Instant::now();
                let answer = match request(worker, n) {
                    Request::Get(path, bearer) => conn.get(path, Some(&bearer)).await,
                    Request::Post(path, body) => conn.post_json(path, body).await,
                };
                recorder.record(&window, started, answer.is_ok_and(|r| ok(&r)));
                n += 1;
            }
            recorder
        });
    }
    let mut all = Recorder::default();
    while let Some(done) = set.join_next().await {
        if let Ok(recorder) = done {
            all.merge(recorder);
        }
    }
    all.summary(&window)
}

/// A 2xx answer.
pub(crate) fn success(response: &Response) -> bool {
    response.ok()
}

/// A 2xx answer whose JSON body is an object (better-auth's `getSession` answers 200
/// `null` for an unknown session).
pub(crate) fn json_object(response: &Response) -> bool {
    response.ok() && response.body.first() == Some(&b'{')
}

/// The body of a better-auth sign-up.
pub(crate) fn sign_up_body(creds: &Creds) -> Vec<u8> {
    json!({ "email": creds.email, "password": creds.password, "name": "Bench User" })
        .to_string()
        .into_bytes()
}

/// The body of a better-auth sign-in.
pub(crate) fn sign_in_body(creds: &Creds) -> Vec<u8> {
    json!({ "email": creds.email, "password": creds.password })
        .to_string()
        .into_bytes()
}

/// A signed-in better-auth session, as its client keeps it.
#[derive(Debug, Clone)]
pub(crate) struct Session {
    /// The signed session token from the `set-auth-token` header (the bearer token).
    pub(crate) bearer: Arc<str>,
}

/// Sign `users` up (an existing account is fine), `concurrency` at a time.
pub(crate) async fn sign_up_all(
    addr: SocketAddr,
    users: &[Creds],
    concurrency: usize,
) -> Result<()> {
    let users = Arc::new(users.to_vec());
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut set = JoinSet::new();
    for _ in 0..concurrency.max(1) {
        let (users, next) = (users.clone(), next.clone());
        set.spawn(async move {
            let mut conn = Conn::new(addr);
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let Some(user) = users.get(i) else {
                    return Ok::<_, anyhow::Error>(());
                };
                let response = conn.post_json(SIGN_UP, sign_up_body(user)).await?;
                // 422: the address is taken (a rerun on the same database).
                if !response.ok() && response.status.as_u16() != 422 {
                    bail!(
                        "better-auth sign-up of {} failed: {} {}",
                        user.email,
                        response.status,
                        String::from_utf8_lossy(&response.body)
                    );
                }
            }
        });
    }
    while let Some(done) = set.join_next().await {
        done??;
    }
    Ok(())
}

/// Sign `user` in: the session's bearer token.
pub(crate) async fn sign_in(addr: SocketAddr, user: &Creds) -> Result<Session> {
    let response = Conn::new(addr)
        .post_json(SIGN_IN, sign_in_body(user))
        .await?;
    if !response.ok() {
        bail!(
            "better-auth sign-in of {} failed: {} {}",
            user.email,
            response.status,
            String::from_utf8_lossy(&response.body)
        );
    }
    let bearer = response
        .headers
        .get("set-auth-token")
        .and_then(|v| v.to_str().ok())
        .context("better-auth's sign-in answer has no set-auth-token header (bearer plugin)")?;
    Ok(Session {
        bearer: bearer.into(),
    })
}

/// A JWT for `session` from the JWT plugin's token route.
pub(crate) async fn jwt(addr: SocketAddr, session: &Session) -> Result<Arc<str>> {
    let response = Conn::new(addr).get(TOKEN, Some(&session.bearer)).await?;
    if !response.ok() {
        bail!("better-auth {TOKEN}: {}", response.status);
    }
    let value: Value = serde_json::from_slice(&response.body)?;
    let token = value
        .get("token")
        .and_then(Value::as_str)
        .context("better-auth's token answer has no token")?;
    Ok(token.into())
}
