//! Start-up and shutdown (`--only startup`): the time from process start to the first
//! `GET /readyz` 200 on an existing store of 1,000,000 users with a session each (median
//! of several starts), and SIGTERM in the middle of refresh chains: every request in
//! flight answered, and after a restart on the same database every chain's last
//! answered refresh token still works (no acknowledged rotation lost).

use std::fmt::Write as _;
use std::path::Path;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use tokio::task::JoinSet;

use super::{latchkey_command, load_average, Bench, REFRESH_CLIENTS};
use crate::api::Api;
use crate::client::Conn;
use crate::seed;
use crate::servers::ServerProcess;

/// Users (and sessions) in the store.
const USERS: u64 = 1_000_000;
/// Timed starts (after a first one, which makes the signing key).
const STARTS: usize = 7;
/// The target, ms.
const TARGET_MS: f64 = 150.0;

/// Start Latchkey on `dir` and time it to its first `/readyz` 200, polled every
/// millisecond on fresh connections. The server and the time, ms.
async fn timed_start(bench: &Bench<'_>, dir: &Path, log: &str) -> Result<(ServerProcess, f64)> {
    let (mut command, addr) = latchkey_command(bench.settings, "EdDSA", dir, &[])?;
    let out = std::fs::File::create(dir.join(log))?;
    command
        .stdin(std::process::Stdio::null())
        .stdout(out.try_clone()?)
        .stderr(out);
    let started = Instant::now();
    let child = command.spawn().context("could not start Latchkey")?;
    let deadline = started + Duration::from_secs(60);
    loop {
        let ready = Conn::new(addr)
            .get("/readyz", None)
            .await
            .is_ok_and(|r| r.ok());
        if ready {
            let ms = started.elapsed().as_secs_f64() * 1000.0;
            return Ok((
                ServerProcess::adopt("Latchkey, 1M", child, addr, dir.join(log)),
                ms,
            ));
        }
        if Instant::now() > deadline {
            bail!(
                "Latchkey was not ready in 60 s (see {})",
                dir.join(log).display()
            );
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

/// What one chain saw around the SIGTERM.
#[derive(Debug, Default, Clone)]
struct Chain {
    /// The refresh token of the last 200 answer.
    last: String,
    answered: u64,
    /// Requests sent before the SIGTERM and finished after it: (answered 2xx, answered
    /// otherwise, no answer).
    in_flight: (u64, u64, u64),
    /// Requests sent after the SIGTERM: (answered 2xx, refused or unanswered).
    after: (u64, u64),
}

async fn chain(
    addr: std::net::SocketAddr,
    first: String,
    sigterm: Arc<OnceLock<Instant>>,
) -> Chain {
    let api = Api::Latchkey;
    let mut conn = Conn::new(addr);
    let mut c = Chain {
        last: first,
        ..Chain::default()
    };
    loop {
        let started = Instant::now();
        let result = conn
            .post_json("/auth/refresh", api.refresh_body(&c.last))
            .await;
        let term = sigterm.get().copied();
        let next = match &result {
            Ok(r) if r.ok() => api.tokens(&r.body),
            _ => None,
        };
        match term {
            Some(t) if started < t => match (&result, &next) {
                (_, Some(_)) => c.in_flight.0 += 1,
                (Ok(_), None) => c.in_flight.1 += 1,
                (Err(_), _) => c.in_flight.2 += 1,
            },
            Some(_) if next.is_some() => c.after.0 += 1,
            Some(_) => c.after.1 += 1,
            None => {}
        }
        match next {
            Some(tokens) => {
                c.last = tokens.refresh;
                c.answered += 1;
            }
            // Before the SIGTERM a refusal is a failure of the run; after it, the server
            // is going away: this chain is done.
            None if term.is_some() => return c,
            None => tokio::time::sleep(Duration::from_millis(5)).await,
        }
    }
}

/// Seed, time the starts, SIGTERM under load, restart and check; the Markdown section.
pub(super) async fn run(bench: &mut Bench<'_>, tmp: &Path) -> Result<String> {
    let load_start = load_average();
    let dir = tmp.join("latchkey-startup");
    std::fs::create_dir_all(&dir)?;
    eprintln!("== start-up: seeding {USERS} users with one session each");
    let (seeded, tokens) =
        seed::seed_with_tokens(&dir.join("latchkey.db"), USERS, 0, REFRESH_CLIENTS).await?;
    eprintln!("  {seeded}");

    let (server, first_ms) = timed_start(bench, &dir, "server-0.log").await?;
    eprintln!("  first start (makes the signing key): {first_ms:.1} ms");
    server.stop();
    let mut starts = Vec::new();
    let mut idle_stops = Vec::new();
    for i in 0..STARTS {
        let (mut server, ms) = timed_start(bench, &dir, &format!("server-{}.log", i + 1)).await?;
        starts.push(ms);
        let term = Instant::now();
        server.terminate()?;
        server
            .wait_exit(Duration::from_secs(30))
            .await
            .context("Latchkey did not exit within 30 s of SIGTERM at rest")?;
        idle_stops.push(term.elapsed().as_secs_f64() * 1000.0);
        eprintln!("  start {}: ready in {ms:.1} ms", i + 1);
    }
    let median = |v: &[f64]| {
        let mut v = v.to_vec();
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let start_ms = median(&starts);
    // For scale: the same on an empty store (made and keyed by a first start).
    let empty = tmp.join("latchkey-startup-empty");
    timed_start(bench, &empty, "server-0.log").await?.0.stop();
    let mut empty_starts = Vec::new();
    for i in 0..STARTS {
        let (server, ms) = timed_start(bench, &empty, &format!("server-{}.log", i + 1)).await?;
        empty_starts.push(ms);
        server.stop();
    }

    eprintln!("== shutdown: SIGTERM during {REFRESH_CLIENTS} refresh chains");
    let (mut server, _) = timed_start(bench, &dir, "server-load.log").await?;
    let sigterm = Arc::new(OnceLock::new());
    let mut set = JoinSet::new();
    for token in &tokens {
        set.spawn(chain(server.addr, token.clone(), sigterm.clone()));
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let _ = sigterm.set(Instant::now());
    server.terminate()?;
    let status = server
        .wait_exit(Duration::from_secs(30))
        .await
        .context("Latchkey did not exit within 30 s of SIGTERM under load")?;
    let exit_ms = sigterm
        .get()
        .map_or(0.0, |t| t.elapsed().as_secs_f64() * 1000.0);
    let mut chains = Vec::new();
    while let Some(done) = set.join_next().await {
        chains.push(done?);
    }

    let (server, restart_ms) = timed_start(bench, &dir, "server-restart.log").await?;
    let mut worked = 0;
    let mut refused = Vec::new();
    for c in &chains {
        let r = Conn::new(server.addr)
            .post_json("/auth/refresh", Api::Latchkey.refresh_body(&c.last))
            .await?;
        if r.ok() {
            worked += 1;
        } else {
            refused.push(r.status.as_u16().to_string());
        }
    }
    server.stop();

    let sum = |f: &dyn Fn(&Chain) -> u64| chains.iter().map(f).sum::<u64>();
    let answered = sum(&|c| c.answered);
    let in_flight = (
        sum(&|c| c.in_flight.0),
        sum(&|c| c.in_flight.1),
        sum(&|c| c.in_flight.2),
    );
    let after = (sum(&|c| c.after.0), sum(&|c| c.after.1));
    let fmt = |v: &[f64]| {
        v.iter()
            .map(|x| format!("{x:.0}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let met = |ok: bool| if ok { "met" } else { "**not met**" };
    let mut out = String::from("\n### Start-up and shutdown\n\n");
    let _ = writeln!(
        out,
        "A store of {USERS} users with a session each ({seeded}), page cache warm (just written). \
         Start = from `spawn` of `taskset -c 0 latchkey` to the first 200 of `GET /readyz` (polled every \
         millisecond on a new connection). Load average at the start: {load_start}; at the end: {}.\n",
        load_average()
    );
    let _ = writeln!(
        out,
        "| measure | result |\n|---|---|\n\
         | first start (makes and stores the signing key) | {first_ms:.1} ms |\n\
         | start to `/readyz` 200, {STARTS} starts | median **{start_ms:.1} ms** (each: {} ms) |\n\
         | the same on an empty store, {STARTS} starts | median {:.1} ms (each: {} ms) |\n\
         | SIGTERM at rest to exit | median {:.1} ms (each: {} ms) |\n\
         | refreshes answered in all ({REFRESH_CLIENTS} chains: 2 s of load, then SIGTERM) | {answered} |\n\
         | requests in flight at the SIGTERM: answered 2xx / answered otherwise / no answer | {} / {} / {} |\n\
         | requests sent after the SIGTERM: answered 2xx / refused or unanswered | {} / {} |\n\
         | SIGTERM under load to exit | {exit_ms:.0} ms ({status}) |\n\
         | restart on the same database, start to ready | {restart_ms:.1} ms |\n\
         | each chain's last answered refresh token after the restart | {worked} / {} accepted{} |",
        fmt(&starts),
        median(&empty_starts),
        fmt(&empty_starts),
        median(&idle_stops),
        fmt(&idle_stops),
        in_flight.0,
        in_flight.1,
        in_flight.2,
        after.0,
        after.1,
        chains.len(),
        if refused.is_empty() {
            String::new()
        } else {
            format!(" (refused: {})", refused.join(", "))
        }
    );
    let _ = writeln!(
        out,
        "\nTargets: start-up < {TARGET_MS:.0} ms: {} ({start_ms:.1} ms). Graceful shutdown, no request in \
         flight unanswered: {}; no acknowledged rotation lost: {}.",
        met(start_ms < TARGET_MS),
        met(in_flight.1 + in_flight.2 == 0),
        met(worked == chains.len() && !chains.is_empty())
    );
    Ok(out)
}
