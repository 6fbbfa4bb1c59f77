//! The load scenarios, as closed loops: each worker owns one keep-alive connection and
//! sends its next request as soon as the previous answer is read.
//!
//! Setup (registrations, the logins that start refresh chains) happens before the
//! window opens and is never measured.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use tokio::task::JoinSet;

use crate::api::{Api, Creds, Tokens};
use crate::client::Conn;
use crate::stats::{Recorder, Summary, Window};

/// A server to load.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Target {
    /// Its address.
    pub(crate) addr: SocketAddr,
    /// The API it speaks.
    pub(crate) api: Api,
}

/// How long to warm up and to measure.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Timing {
    /// Unmeasured time first.
    pub(crate) warmup: Duration,
    /// Measured time.
    pub(crate) duration: Duration,
}

impl Timing {
    /// The timing for scenarios bound by password hashing, which complete a few dozen
    /// requests a second (and queued logins wait seconds): at least 6 s measured.
    pub(crate) fn for_logins(self) -> Self {
        Self {
            duration: self.duration.max(Duration::from_secs(6)),
            ..self
        }
    }

    /// The timing for the protected route, which answers tens of thousands of requests a
    /// second: at most 2 s measured is plenty, and the time saved keeps `bench/run`
    /// short enough for its alternating rounds.
    pub(crate) fn for_protected(self) -> Self {
        Self {
            duration: self.duration.min(Duration::from_secs(2)),
            ..self
        }
    }

    pub(crate) fn window(self) -> Window {
        Window::starting_now(self.warmup, self.duration)
    }
}

/// Register `users` (an existing account is fine) over `concurrency` connections.
pub(crate) async fn register_all(
    target: Target,
    users: &[Creds],
    concurrency: usize,
) -> Result<()> {
    let users = Arc::new(users.to_vec());
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut set = JoinSet::new();
    for _ in 0..concurrency.max(1) {
        let (users, next) = (users.clone(), next.clone());
        set.spawn(async move {
            let mut conn = Conn::new(target.addr);
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let Some(user) = users.get(i) else {
                    return Ok::<_, anyhow::Error>(());
                };
                let response = conn
                    .post_json("/auth/register", target.api.register_body(user))
                    .await?;
                if !response.ok() && response.status.as_u16() != 409 {
                    bail!(
                        "registering {} failed: {} {}",
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

async fn login(conn: &mut Conn, api: Api, user: &Creds) -> Result<Tokens> {
    let response = conn.post_json("/auth/login", api.login_body(user)).await?;
    if !response.ok() {
        bail!(
            "login of {} failed: {} {}",
            user.email,
            response.status,
            String::from_utf8_lossy(&response.body)
        );
    }
    api.tokens(&response.body)
        .context("the login response has no token pair")
}

/// Log `user` in once, on a connection of its own.
pub(crate) async fn login_once(target: Target, user: &Creds) -> Result<Tokens> {
    login(&mut Conn::new(target.addr), target.api, user).await
}

/// Log in `count` sessions, user `i % users.len()` for the `i`th, all at once.
async fn login_many(target: Target, users: &[Creds], count: usize) -> Result<Vec<Tokens>> {
    if users.is_empty() {
        bail!("no users to log in");
    }
    let mut set = JoinSet::new();
    for i in 0..count {
        let user = users[i % users.len()].clone();
        set.spawn(async move { (i, login_once(target, &user).await) });
    }
    let mut tokens: Vec<Option<Tokens>> = vec![None; count];
    while let Some(done) = set.join_next().await {
        let (i, result) = done?;
        tokens[i] = Some(result?);
    }
    Ok(tokens.into_iter().flatten().collect())
}

pub(crate) async fn collect(mut set: JoinSet<Recorder>, window: &Window) -> Result<Summary> {
    let mut all = Recorder::default();
    while let Some(done) = set.join_next().await {
        all.merge(done?);
    }
    Ok(all.summary(window))
}

/// Scenario 1: `connections` workers all sending `GET` on the protected route with one
/// valid access token.
pub(crate) async fn protected(
    target: Target,
    token: Arc<str>,
    connections: usize,
    timing: Timing,
) -> Summary {
    let window = timing.window();
    let mut set = JoinSet::new();
    for _ in 0..connections {
        let token = token.clone();
        set.spawn(async move {
            let mut conn = Conn::new(target.addr);
            let mut recorder = Recorder::default();
            while window.open() {
                let started = Instant::now();
                let ok = conn
                    .get(target.api.protected_path(), Some(&token))
                    .await
                    .is_ok_and(|r| r.ok());
                recorder.record(&window, started, ok);
            }
            recorder
        });
    }
    collect(set, &window)
        .await
        .unwrap_or_else(|_| Recorder::default().summary(&window))
}

/// One refresh chain: present the refresh token just received, again and again. After a
/// refusal the chain starts over with a new login (not measured).
async fn refresh_chain(
    target: Target,
    user: Creds,
    mut tokens: Tokens,
    window: Window,
) -> Recorder {
    let mut conn = Conn::new(target.addr);
    let mut recorder = Recorder::default();
    while window.open() {
        let started = Instant::now();
        let next = match conn
            .post_json("/auth/refresh", target.api.refresh_body(&tokens.refresh))
            .await
        {
            Ok(response) if response.ok() => target.api.tokens(&response.body),
            _ => None,
        };
        recorder.record(&window, started, next.is_some());
        match next {
            Some(next) => tokens = next,
            None => loop {
                if !window.open() {
                    break;
                }
                match login(&mut conn, target.api, &user).await {
                    Ok(fresh) => {
                        tokens = fresh;
                        break;
                    }
                    Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
                }
            },
        }
    }
    recorder
}

/// Scenario 2: `clients` refresh chains (client `i` logs in user `i % users.len()` first).
pub(crate) async fn refresh_chains(
    target: Target,
    users: &[Creds],
    clients: usize,
    timing: Timing,
) -> Result<Summary> {
    let tokens = login_many(target, users, clients).await?;
    let window = timing.window();
    let mut set = JoinSet::new();
    for (i, tokens) in tokens.into_iter().enumerate() {
        let user = users[i % users.len()].clone();
        set.spawn(refresh_chain(target, user, tokens, window));
    }
    collect(set, &window).await
}

async fn login_worker(
    target: Target,
    users: Arc<Vec<Creds>>,
    first: usize,
    window: Window,
) -> Recorder {
    let mut conn = Conn::new(target.addr);
    let mut recorder = Recorder::default();
    let mut n = first;
    while window.open() {
        let user = &users[n % users.len()];
        n += 1;
        let started = Instant::now();
        let ok = login(&mut conn, target.api, user).await.is_ok();
        recorder.record(&window, started, ok);
    }
    recorder
}

/// Scenario 3: `connections` workers logging in, worker `i` cycling through the users
/// from user `i`.
pub(crate) async fn logins(
    target: Target,
    users: &[Creds],
    connections: usize,
    timing: Timing,
) -> Summary {
    let users = Arc::new(users.to_vec());
    let window = timing.window();
    let mut set = JoinSet::new();
    for i in 0..connections {
        set.spawn(login_worker(target, users.clone(), i, window));
    }
    collect(set, &window)
        .await
        .unwrap_or_else(|_| Recorder::default().summary(&window))
}

/// Logins and refresh chains at the same time: what a login flood does to refreshes.
#[derive(Debug, Clone, Copy)]
pub(crate) struct FloodSummary {
    /// The logins.
    pub(crate) logins: Summary,
    /// The refreshes during the flood.
    pub(crate) refreshes: Summary,
}

/// `login_connections` workers logging in while `refresh_clients` refresh chains run.
pub(crate) async fn login_flood(
    target: Target,
    users: &[Creds],
    login_connections: usize,
    refresh_clients: usize,
    timing: Timing,
) -> Result<FloodSummary> {
    let tokens = login_many(target, users, refresh_clients).await?;
    let shared = Arc::new(users.to_vec());
    let window = timing.window();
    let mut flood = JoinSet::new();
    for i in 0..login_connections {
        flood.spawn(login_worker(target, shared.clone(), i, window));
    }
    let mut chains = JoinSet::new();
    for (i, tokens) in tokens.into_iter().enumerate() {
        let user = users[i % users.len()].clone();
        chains.spawn(refresh_chain(target, user, tokens, window));
    }
    Ok(FloodSummary {
        logins: collect(flood, &window).await?,
        refreshes: collect(chains, &window).await?,
    })
}

/// The mixed scenario, overall and per kind of request.
#[derive(Debug, Clone, Copy)]
pub(crate) struct MixedSummary {
    /// All requests.
    pub(crate) all: Summary,
    /// The protected `GET`s (90%).
    pub(crate) protected: Summary,
    /// The refreshes (9%).
    pub(crate) refresh: Summary,
    /// The logins (1%).
    pub(crate) login: Summary,
}

#[derive(Default)]
struct MixedRecorders {
    protected: Recorder,
    refresh: Recorder,
    login: Recorder,
}

/// xorshift64*: a few cycles per draw, deterministic per worker.
struct Rng(u64);

impl Rng {
    fn next_below(&mut self, bound: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) % bound
    }
}

async fn mixed_worker(
    target: Target,
    owned: Vec<Creds>,
    mut tokens: Tokens,
    seed: u64,
    window: Window,
) -> MixedRecorders {
    let mut conn = Conn::new(target.addr);
    let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    let mut recorders = MixedRecorders::default();
    let mut next_user = 1;
    while window.open() {
        let draw = rng.next_below(1000);
        let started = Instant::now();
        if draw < 900 {
            let ok = conn
                .get(target.api.protected_path(), Some(&tokens.access))
                .await
                .is_ok_and(|r| r.ok());
            recorders.protected.record(&window, started, ok);
        } else {
            let result = if draw < 990 {
                let response = conn
                    .post_json("/auth/refresh", target.api.refresh_body(&tokens.refresh))
                    .await;
                match response {
                    Ok(r) if r.ok() => target.api.tokens(&r.body),
                    _ => None,
                }
            } else {
                let user = &owned[next_user % owned.len()];
                next_user += 1;
                login(&mut conn, target.api, user).await.ok()
            };
            let recorder = if draw < 990 {
                &mut recorders.refresh
            } else {
                &mut recorders.login
            };
            recorder.record(&window, started, result.is_some());
            if let Some(fresh) = result {
                tokens = fresh;
            } else if let Ok(fresh) = login(&mut conn, target.api, &owned[0]).await {
                // The chain broke: start a new session (not measured).
                tokens = fresh;
            }
        }
    }
    recorders
}

/// Scenario 4: `connections` workers, each request drawn at random: 90% protected `GET`,
/// 9% refresh, 1% login. The users are shared out among the workers (worker `w` owns
/// users `w`, `w + connections`, ...), so logins rotate through all of them and every
/// worker follows its own refresh chain with its own access token.
pub(crate) async fn mixed(
    target: Target,
    users: &[Creds],
    connections: usize,
    timing: Timing,
) -> Result<MixedSummary> {
    let owned: Vec<Vec<Creds>> = (0..connections)
        .map(|w| {
            let mine: Vec<Creds> = users.iter().skip(w).step_by(connections).cloned().collect();
            if mine.is_empty() {
                vec![users[w % users.len()].clone()]
            } else {
                mine
            }
        })
        .collect();
    let firsts: Vec<Creds> = owned.iter().map(|mine| mine[0].clone()).collect();
    let tokens = login_many(target, &firsts, connections).await?;
    let window = timing.window();
    let mut set = JoinSet::new();
    for (w, (mine, tokens)) in owned.into_iter().zip(tokens).enumerate() {
        set.spawn(mixed_worker(target, mine, tokens, w as u64 + 1, window));
    }
    let mut all = MixedRecorders::default();
    while let Some(done) = set.join_next().await {
        let done = done?;
        all.protected.merge(done.protected);
        all.refresh.merge(done.refresh);
        all.login.merge(done.login);
    }
    let mut total = Recorder::default();
    for part in [&all.protected, &all.refresh, &all.login] {
        total.merge(part.clone());
    }
    Ok(MixedSummary {
        all: total.summary(&window),
        protected: all.protected.summary(&window),
        refresh: all.refresh.summary(&window),
        login: all.login.summary(&window),
    })
}
