//! The two-replica group's measurements and their Markdown.

use std::fmt::Write as _;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use super::super::compare::{compare, Comparison, Run, Side};
use super::super::host::pid_of;
use super::super::{load_average, rest_mib, start_latchkey, Bench, LOAD_CORE, REFRESH_CLIENTS};
use super::{
    first_logins, repin, revoke_all, run_chains, sampled, shares, Calls, Revocation, Shares, Watch,
    GAP, POLL, REVOCATIONS, REVOCATION_SECONDS, REVOKED_USERS,
};
use crate::api::{Api, Creds};
use crate::client::Conn;
use crate::report::thousands;
use crate::scenarios::{self, Target, Timing};
use crate::stats::{Summary, Window};

/// The sides of the comparison: which replicas the chains alternate over.
const SIDES: [&str; 4] = [
    "A + B, both on core 0",
    "A + B, half the chains each, both on core 0",
    "A (core 0) + C (core 1)",
    "A alone (reference)",
];

/// Median, 95th percentile (nearest rank) and maximum.
fn spread(values: &[f64]) -> (f64, f64, f64) {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    if v.is_empty() {
        return (f64::NAN, f64::NAN, f64::NAN);
    }
    let rank = |p: f64| v[((p * v.len() as f64).ceil() as usize).clamp(1, v.len()) - 1];
    (rank(0.5), rank(0.95), v[v.len() - 1])
}

/// `later - earlier` in ms, negative if `later` came first.
fn signed_ms(later: Instant, earlier: Instant) -> f64 {
    match later.checked_duration_since(earlier) {
        Some(d) => d.as_secs_f64() * 1000.0,
        None => -(earlier.saturating_duration_since(later).as_secs_f64() * 1000.0),
    }
}

fn pct(x: Option<f64>) -> String {
    x.map_or_else(|| "-".to_owned(), |v| format!("{:.0}%", v * 100.0))
}

/// One row of the table.
fn row(out: &mut String, label: &str, summary: &Summary, shares: &Shares, loadgen: Option<f64>) {
    let each: Vec<String> = shares.replicas.iter().map(|s| pct(Some(*s))).collect();
    let together: f64 = shares.replicas.iter().sum();
    let cores: Vec<String> = shares.host.cores.iter().map(|c| pct(Some(*c))).collect();
    let per_core = if together > 0.0 {
        thousands(summary.rate / together)
    } else {
        "-".to_owned()
    };
    let _ = write!(
        out,
        "| {label} | {} | {:.2} | {:.2} | {} | {} | {} | {} | {} | {} | {} | {per_core} |",
        thousands(summary.rate),
        summary.p50_ms,
        summary.p99_ms,
        summary.errors,
        each.join(" / "),
        pct(Some(together)),
        pct(shares.host.postgres),
        pct(shares.redis),
        pct(loadgen),
        cores.join(" / "),
    );
}

/// Start the replicas, compare, measure the revocations; the section's body.
pub(super) async fn measure(
    bench: &mut Bench<'_>,
    tmp: &Path,
    db_url: &str,
    redis: &str,
) -> Result<String> {
    let settings = bench.settings;
    let timing = settings.timing;
    let hz = bench.hz;
    let load_start = load_average();
    eprintln!("== two replicas on PostgreSQL ({db_url}) and Redis ({redis})");
    let env = [
        ("LATCHKEY_DATABASE_URL", db_url),
        ("LATCHKEY_REDIS_URL", redis),
        ("LATCHKEY_REVOCATION_POLL", "1h"),
        ("LATCHKEY_RATE_LOGOUT_PER_IP", "1000000/1s"),
    ];
    // One after another: the first creates the schema and the signing key.
    let mut replicas = Vec::new();
    for name in ["A", "B", "C"] {
        let dir = tmp.join(format!("latchkey-replica-{name}"));
        let replica = start_latchkey(
            settings,
            &format!("replica {name}"),
            "EdDSA",
            &dir,
            &env,
            "server.log",
        )
        .await?;
        replicas.push(replica);
    }
    if settings.server_core.is_some() {
        repin(replicas[2].pid().context("C is not running")?, LOAD_CORE)?;
    }
    let rest = rest_mib(&replicas[0]).await;
    for replica in &replicas {
        let ready = Conn::new(replica.addr).get("/readyz", None).await?;
        let body = String::from_utf8_lossy(&ready.body);
        if !ready.ok() || !body.contains("\"redis\":\"ok\"") {
            bail!(
                "{} is not ready with Redis: {} {body}",
                replica.name,
                ready.status
            );
        }
    }
    let target = |i: usize| Target {
        addr: replicas[i].addr,
        api: Api::Latchkey,
    };
    let (a, b, c) = (target(0), target(1), target(2));
    let users: Vec<Creds> = (0..REFRESH_CLIENTS).map(Creds::bench).collect();
    let revoked: Vec<Creds> = (REFRESH_CLIENTS..REFRESH_CLIENTS + REVOKED_USERS)
        .map(Creds::bench)
        .collect();
    eprintln!("  registering {} users", users.len() + revoked.len());
    scenarios::register_all(a, &[users.clone(), revoked.clone()].concat(), 8).await?;

    let watch = Arc::new(Watch {
        replicas: replicas
            .iter()
            .map(|r| r.pid().map(|p| p.to_string()).unwrap_or_default())
            .collect(),
        redis: pid_of("redis-server").map(|p| p.to_string()),
    });
    let calls: Vec<Calls> = (0..SIDES.len()).map(|_| Calls::default()).collect();
    let users = Arc::new(users);
    let side_run = |targets: Vec<Target>, alternate: bool, calls: &Calls| -> Run<'static> {
        let (watch, calls, users) = (watch.clone(), calls.clone(), users.clone());
        Box::new(move || {
            let (watch, calls, users, targets) =
                (watch.clone(), calls.clone(), users.clone(), targets.clone());
            Box::pin(async move {
                let tokens = first_logins(&targets, &users).await?;
                let window = timing.window();
                sampled(
                    watch,
                    calls,
                    run_chains(&targets, alternate, &users, tokens, window),
                )
                .await
            })
        })
    };
    let side = |i: usize, targets: Vec<Target>, alternate: bool| Side {
        name: SIDES[i],
        server: &replicas[0],
        rest,
        peer: i == SIDES.len() - 1,
        run: side_run(targets, alternate, &calls[i]),
    };
    let sides = [
        side(0, vec![a, b], true),
        side(1, vec![a, b], false),
        side(2, vec![a, c], true),
        side(3, vec![a], true),
    ];
    let comparison = compare(
        bench,
        "refresh chains",
        REFRESH_CLIENTS,
        settings.rounds,
        &sides,
    )
    .await?;
    drop(sides);

    eprintln!("== {REVOCATIONS} logouts on A, each polled on B, while chains run on A and B");
    let mut sessions = Vec::new();
    for i in 0..REVOCATIONS {
        sessions.push(scenarios::login_once(a, &revoked[i % revoked.len()]).await?);
    }
    let both = [a, b];
    let tokens = first_logins(&both, &users).await?;
    let window = Timing {
        warmup: timing.warmup,
        duration: Duration::from_secs(REVOCATION_SECONDS),
    }
    .window();
    let phase_calls = Calls::default();
    let phase = async {
        let (load, revocations) = tokio::join!(
            sampled(
                watch.clone(),
                phase_calls.clone(),
                run_chains(&both, true, &users, tokens, window)
            ),
            revoke_all(a, b, &sessions, window)
        );
        Ok::<_, anyhow::Error>((load?, revocations))
    };
    let ((load, (seen, problems)), _, cpu) = bench.measure(&replicas[0], phase).await?;
    eprintln!("    under load: {load}; {} revocations seen", seen.len());
    for replica in replicas {
        replica.stop();
    }

    let shares_of = |calls: &Calls, round: usize, window: &Window| {
        calls
            .lock()
            .ok()
            .and_then(|c| c.get(round).map(|s| shares(s, window, hz)))
            .unwrap_or_default()
    };
    Ok(render(&Rendered {
        comparison: &comparison,
        side_shares: (0..SIDES.len())
            .map(|i| {
                shares_of(
                    &calls[i],
                    comparison.chosen,
                    &comparison.sides[i].summary.window,
                )
            })
            .collect(),
        load,
        load_shares: shares_of(&phase_calls, 0, &window),
        load_loadgen: cpu.over(&window, hz).loadgen,
        seen,
        problems,
        load_start,
    }))
}

struct Rendered<'a> {
    comparison: &'a Comparison,
    side_shares: Vec<Shares>,
    load: Summary,
    load_shares: Shares,
    load_loadgen: Option<f64>,
    seen: Vec<Revocation>,
    problems: Vec<String>,
    load_start: String,
}

fn render(r: &Rendered<'_>) -> String {
    let c = r.comparison;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Three replicas of the release build (EdDSA, the default pool of 8 connections each, \
         `LATCHKEY_REVOCATION_POLL=1h`), started one after another on the same database and Redis. \
         {REFRESH_CLIENTS} refresh chains, each alternating replicas request by request (chain `i` starts on \
         the `i % 2`th; in the \"half the chains each\" row chain `i` stays on it), against the same \
         {REFRESH_CLIENTS} chains on A alone, in {} alternating rounds; \
         the rows are the round of median ratio (A + B over A alone). **How the cores were shared:** A and \
         B pinned to core 0 (two replicas on the core one replica gets), C to core 1 beside the load \
         generator; PostgreSQL and Redis unpinned on both. CPU = shares of one core over the measured \
         window (`/proc`, every 50 ms; PostgreSQL = every `postgres` process). Load average at the start: \
         {}; at the end: {}.\n",
        c.rates.first().map_or(0, Vec::len),
        r.load_start,
        load_average()
    );
    let _ = writeln!(
        out,
        "| chains over | req/s | p50 ms | p99 ms | errors | CPU A / B / C | replicas together | PostgreSQL CPU | Redis CPU | load-gen CPU | core 0 / core 1 busy | req/s per replica core | / A alone, by round | median |\n\
         |---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    );
    let reference = c.sides.len() - 1;
    for (i, (side, shares)) in c.sides.iter().zip(&r.side_shares).enumerate() {
        row(&mut out, side.name, &side.summary, shares, side.cpu.loadgen);
        if i == reference {
            let _ = writeln!(out, " | |");
        } else {
            let (by_round, median) = c.ratio_of(i, reference);
            let rounds: Vec<String> = by_round.iter().map(|x| format!("{x:.2}")).collect();
            let _ = writeln!(out, " {} | **{median:.2}x** |", rounds.join(", "));
        }
    }
    row(
        &mut out,
        "A + B during the revocations",
        &r.load,
        &r.load_shares,
        r.load_loadgen,
    );
    let _ = writeln!(out, " | |\n");

    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let from_send: Vec<f64> = r.seen.iter().map(|x| ms(x.refused - x.sent)).collect();
    let from_ack: Vec<f64> = r
        .seen
        .iter()
        .map(|x| signed_ms(x.refused, x.acked))
        .collect();
    let logout: Vec<f64> = r.seen.iter().map(|x| ms(x.acked - x.sent)).collect();
    let first = from_ack.iter().filter(|d| **d < 0.0).count();
    let polls: u32 = r.seen.iter().map(|x| x.polls).sum();
    let polled: f64 = from_send.iter().sum();
    let _ = writeln!(
        out,
        "Cross-replica revocation, during the last row's load: {REVOCATIONS} logouts (`POST /auth/logout` with the \
         session's access token as bearer, on A; {REVOCATIONS} sessions of {REVOKED_USERS} users logged in \
         on A before, each checked 200 on B first), one at a time {} ms apart; meanwhile B is asked \
         `GET /auth/me` with that token every {} ms (a tokio interval on the load generator's thread, \
         one keep-alive connection) until it answers 401. The mean gap between polls, round trip \
         included, was {:.2} ms ({:.1} polls per logout). {} of {REVOCATIONS} measured{}.\n",
        GAP.as_millis(),
        POLL.as_millis(),
        if polls > 0 {
            polled / f64::from(polls)
        } else {
            f64::NAN
        },
        f64::from(polls) / r.seen.len().max(1) as f64,
        r.seen.len(),
        if r.problems.is_empty() {
            String::new()
        } else {
            format!("; not measured: {}", r.problems.join("; "))
        }
    );
    let _ = writeln!(
        out,
        "| delay | median ms | p95 ms | max ms |\n|---|---:|---:|---:|"
    );
    for (label, values) in [
        ("logout sent on A → first 401 from B", &from_send),
        ("A's 204 read → first 401 from B", &from_ack),
        ("the logout on A (sent → 204)", &logout),
    ] {
        let (median, p95, max) = spread(values);
        let _ = writeln!(out, "| {label} | {median:.2} | {p95:.2} | {max:.2} |");
    }
    let _ = writeln!(
        out,
        "\nB answered 401 before A's 204 had been read in {first} of {} logouts (negative delays in the \
         second row): A announces on Redis before it answers.",
        r.seen.len()
    );
    out
}
