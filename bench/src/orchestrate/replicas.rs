//! Two Latchkey replicas on one PostgreSQL and one Redis (`--only replicas`): the
//! aggregate refresh rate of chains spread over both, next to one replica alone in the
//! same run (alternating rounds), and, under that load, how long a logout on one replica
//! takes to reach the other.
//!
//! The replicas share a database created for the run (dropped after) and the Redis of
//! `--redis-url`, and read the store's revocation log only hourly
//! (`LATCHKEY_REVOCATION_POLL=1h`): only Redis fan-out can carry a revocation from one to
//! the other here. Each chain alternates replicas request by request (chain `i` starts on
//! replica `i % 2`), as behind a round-robin load balancer, so every refresh token it
//! presents was issued by the other replica; one side instead keeps half the chains on
//! each replica (as behind a sticky balancer), to tell the cost of alternating from the
//! cost of a second process.
//!
//! Cores: replicas A and B pinned to the server core (0), so two replicas get the core one
//! replica gets; a third, C, pinned to the load generator's core (1), for a pair with a
//! core each (shared with the load generator). PostgreSQL and Redis, system services, run
//! unpinned on both cores; their CPU and each core's busy share are reported.

use std::future::Future;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::task::JoinSet;

use super::host::{HostSample, HostShares};
use super::postgres::{create_scratch_database, drop_scratch_database};
use super::Bench;
use crate::api::{Creds, Tokens};
use crate::client::Conn;
use crate::scenarios::{self, Target};
use crate::servers::cpu_ticks;
use crate::stats::{Recorder, Summary, Window};

mod measure;

/// Sessions logged out on A, one after another, while the chains run.
const REVOCATIONS: usize = 50;
/// How often B is asked whether it still accepts the logged-out session's token.
const POLL: Duration = Duration::from_millis(1);
/// Pause between two revocations.
const GAP: Duration = Duration::from_millis(20);
/// Measured seconds of the revocation phase (the revocations stop when it closes).
const REVOCATION_SECONDS: u64 = 10;
/// A revocation not seen on B after this long counts as lost.
const GIVE_UP: Duration = Duration::from_secs(5);
/// Users whose sessions the revocation phase logs out (beside the chains' users).
const REVOKED_USERS: usize = 4;

/// One sample of the CPU counters this group reports.
#[derive(Debug, Clone)]
struct Sample {
    host: HostSample,
    replicas: Vec<u64>,
    redis: Option<u64>,
}

/// What to sample: the replicas' pids and Redis's.
struct Watch {
    replicas: Vec<String>,
    redis: Option<String>,
}

impl Watch {
    fn sample(&self) -> Sample {
        Sample {
            host: HostSample::now(),
            replicas: self
                .replicas
                .iter()
                .map(|p| cpu_ticks(p).unwrap_or(0))
                .collect(),
            redis: self.redis.as_deref().and_then(cpu_ticks),
        }
    }
}

/// Samples of every call of one side, in call (= round) order.
type Calls = Arc<Mutex<Vec<Vec<Sample>>>>;

/// Run `scenario` while sampling every 50 ms; the samples go to `calls`.
async fn sampled<F>(watch: Arc<Watch>, calls: Calls, scenario: F) -> Result<Summary>
where
    F: Future<Output = Result<Summary>>,
{
    let samples = Arc::new(Mutex::new(Vec::new()));
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let sampler = {
        let (samples, done) = (samples.clone(), done.clone());
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_millis(50));
            while !done.load(std::sync::atomic::Ordering::Relaxed) {
                tick.tick().await;
                let sample = watch.sample();
                if let Ok(mut s) = samples.lock() {
                    s.push(sample);
                }
            }
        })
    };
    let out = scenario.await;
    done.store(true, std::sync::atomic::Ordering::Relaxed);
    let _ = sampler.await;
    let taken = samples.lock().map(|mut s| std::mem::take(&mut *s));
    if let (Ok(mut calls), Ok(taken)) = (calls.lock(), taken) {
        calls.push(taken);
    }
    out
}

/// Shares of one core over a window: each replica, Redis, PostgreSQL, each core busy.
#[derive(Debug, Clone, Default)]
struct Shares {
    host: HostShares,
    replicas: Vec<f64>,
    redis: Option<f64>,
}

fn shares(samples: &[Sample], window: &Window, hz: f64) -> Shares {
    let first = samples.iter().find(|s| s.host.at >= window.from());
    let last = samples.iter().rev().find(|s| s.host.at <= window.until());
    let (Some(a), Some(b)) = (first, last) else {
        return Shares::default();
    };
    let ticks = (b.host.at - a.host.at).as_secs_f64() * hz;
    if ticks <= 0.0 {
        return Shares::default();
    }
    let share = |x: u64, y: u64| y.saturating_sub(x) as f64 / ticks;
    Shares {
        host: HostShares::between(&a.host, &b.host, hz),
        replicas: a
            .replicas
            .iter()
            .zip(&b.replicas)
            .map(|(x, y)| share(*x, *y))
            .collect(),
        redis: a.redis.zip(b.redis).map(|(x, y)| share(x, y)),
    }
}

/// Log each user in on the replica its chain starts on (`targets[i % len]`).
async fn first_logins(targets: &[Target], users: &[Creds]) -> Result<Vec<Tokens>> {
    let mut set = JoinSet::new();
    for (i, user) in users.iter().enumerate() {
        let (target, user) = (targets[i % targets.len()], user.clone());
        set.spawn(async move { (i, scenarios::login_once(target, &user).await) });
    }
    let mut tokens: Vec<Option<Tokens>> = vec![None; users.len()];
    while let Some(done) = set.join_next().await {
        let (i, result) = done?;
        tokens[i] = Some(result?);
    }
    Ok(tokens.into_iter().flatten().collect())
}

/// One refresh chain over `targets`, request `n` to `targets[n % len]`, from `first`.
/// After a refusal the chain starts over with a login (not measured).
async fn chain(
    targets: Vec<Target>,
    first: usize,
    user: Creds,
    mut tokens: Tokens,
    window: Window,
) -> Recorder {
    let mut conns: Vec<Conn> = targets.iter().map(|t| Conn::new(t.addr)).collect();
    let mut recorder = Recorder::default();
    let mut n = first;
    while window.open() {
        let k = n % targets.len();
        n += 1;
        let api = targets[k].api;
        let started = Instant::now();
        let next = match conns[k]
            .post_json("/auth/refresh", api.refresh_body(&tokens.refresh))
            .await
        {
            Ok(response) if response.ok() => api.tokens(&response.body),
            _ => None,
        };
        recorder.record(&window, started, next.is_some());
        match next {
            Some(next) => tokens = next,
            None => {
                while window.open() {
                    match scenarios::login_once(targets[k], &user).await {
                        Ok(fresh) => {
                            tokens = fresh;
                            break;
                        }
                        Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
                    }
                }
            }
        }
    }
    recorder
}

/// Refresh chains (one per user) over `targets` through `window`: each alternating over
/// all of them, or (`alternate` false) chain `i` on `targets[i % len]` only.
async fn run_chains(
    targets: &[Target],
    alternate: bool,
    users: &[Creds],
    tokens: Vec<Tokens>,
    window: Window,
) -> Result<Summary> {
    let mut set = JoinSet::new();
    for (i, (user, tokens)) in users.iter().zip(tokens).enumerate() {
        let mine = if alternate {
            targets.to_vec()
        } else {
            vec![targets[i % targets.len()]]
        };
        set.spawn(chain(mine, i, user.clone(), tokens, window));
    }
    scenarios::collect(set, &window).await
}

/// One revocation: when the logout was sent on A, when A's answer was read, when B's
/// first 401 was read, and how many polls of B that took.
#[derive(Debug, Clone, Copy)]
struct Revocation {
    sent: Instant,
    acked: Instant,
    refused: Instant,
    polls: u32,
}

/// Ask B for `GET /auth/me` every [`POLL`] until it answers 401: when, and how many polls.
async fn until_refused(b: &mut Conn, access: &str) -> Result<(Instant, u32)> {
    let started = Instant::now();
    let mut tick = tokio::time::interval(POLL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut polls = 0;
    loop {
        tick.tick().await;
        polls += 1;
        let response = b.get("/auth/me", Some(access)).await?;
        if response.status.as_u16() == 401 {
            return Ok((Instant::now(), polls));
        }
        if !response.ok() {
            bail!("B answered {} while polled", response.status);
        }
        if started.elapsed() > GIVE_UP {
            bail!("B still accepted the token {GIVE_UP:?} after the logout");
        }
    }
}

/// Log each session out on A (bearer access token) once the window opens, polling B
/// meanwhile; the revocations seen and what went wrong.
async fn revoke_all(
    a: Target,
    b: Target,
    sessions: &[Tokens],
    window: Window,
) -> (Vec<Revocation>, Vec<String>) {
    tokio::time::sleep_until(window.from().into()).await;
    let (mut on_a, mut on_b) = (Conn::new(a.addr), Conn::new(b.addr));
    let (mut seen, mut problems) = (Vec::new(), Vec::new());
    for session in sessions {
        if !window.open() {
            problems.push(format!("the window closed after {} logouts", seen.len()));
            break;
        }
        match on_b.get("/auth/me", Some(&session.access)).await {
            Ok(r) if r.ok() => {}
            Ok(r) => {
                problems.push(format!("B answered {} before the logout", r.status));
                continue;
            }
            Err(e) => {
                problems.push(format!("B before the logout: {e:#}"));
                continue;
            }
        }
        let sent = Instant::now();
        let logout = async {
            let status = on_a.post_bearer("/auth/logout", &session.access).await;
            (status.map(|r| r.status.as_u16()), Instant::now())
        };
        let ((status, acked), refused) =
            tokio::join!(logout, until_refused(&mut on_b, &session.access));
        match (status, refused) {
            (Ok(204), Ok((refused, polls))) => seen.push(Revocation {
                sent,
                acked,
                refused,
                polls,
            }),
            (Ok(204), Err(e)) => problems.push(format!("{e:#}")),
            (other, _) => problems.push(format!("logout on A: {other:?}")),
        }
        tokio::time::sleep(GAP).await;
    }
    (seen, problems)
}

/// The Redis server's version (`INFO server`), which also checks that it answers.
async fn redis_version(url: &str) -> Result<String> {
    let rest = url.strip_prefix("redis://").unwrap_or(url);
    let host = rest.rsplit('@').next().unwrap_or(rest);
    let host = host.split('/').next().unwrap_or(host);
    let mut stream =
        tokio::time::timeout(Duration::from_secs(3), tokio::net::TcpStream::connect(host))
            .await
            .context("timed out")??;
    stream.write_all(b"INFO server\r\n").await?;
    let mut text = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let n = tokio::time::timeout(Duration::from_secs(3), stream.read(&mut buf))
            .await
            .context("timed out")??;
        if n == 0 {
            bail!("Redis closed the connection before answering INFO");
        }
        text.extend_from_slice(&buf[..n]);
        let s = String::from_utf8_lossy(&text);
        if let Some(at) = s.find("redis_version:") {
            let value = &s[at + "redis_version:".len()..];
            if let Some(end) = value.find("\r\n") {
                return Ok(value[..end].to_owned());
            }
        }
    }
}

/// Pin a running process, every thread, to `core` (`taskset -a -p`).
fn repin(pid: u32, core: usize) -> Result<()> {
    let status = Command::new("taskset")
        .args(["-a", "-p", "-c", &core.to_string(), &pid.to_string()])
        .stdout(Stdio::null())
        .status()?;
    if !status.success() {
        bail!("taskset could not move {pid} to core {core}");
    }
    Ok(())
}

/// Create the database, measure, drop it; the Markdown section.
pub(super) async fn run(
    bench: &mut Bench<'_>,
    tmp: &Path,
    pg: &str,
    redis: &str,
) -> Result<String> {
    let pg = pg.trim_end_matches('/');
    let redis_version = redis_version(redis)
        .await
        .with_context(|| format!("Redis at {redis} (start redis-server, or pass --redis-url)"))?;
    let db = format!("latchkey_bench_replicas_{}", std::process::id());
    let facts = create_scratch_database(pg, &db).await?;
    let (version, sync_commit) = (facts.version, facts.synchronous_commit);
    let result = measure::measure(bench, tmp, &format!("{pg}/{db}"), redis).await;
    drop_scratch_database(pg, &db).await?;
    let body = result?;
    Ok(format!(
        "\n### Two replicas on one PostgreSQL and one Redis\n\n\
         PostgreSQL {version} (`synchronous_commit={sync_commit}`), database `{db}` created for the run \
         and dropped after; Redis {redis_version} at {redis}. {body}"
    ))
}
