//! PostgreSQL under load (`--only postgres`): refresh chains, login and the mixed
//! scenario on Latchkey with `LATCHKEY_DATABASE_URL=postgres://…` (a database created
//! for the run and dropped after), alternating with Latchkey on SQLite, and PostgreSQL's
//! own CPU (every `postgres` process, from /proc) beside Latchkey's.
//!
//! Latchkey is pinned to the server core and this load generator to the other, as
//! everywhere; PostgreSQL is a system service here and runs on both cores: its CPU
//! comes out of the same two cores, and the per-core busy shares say where.

use std::fmt::Write as _;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result};
use sqlx::{Connection, PgConnection};

use super::compare::{compare, table, Comparison, Run, Side};
use super::host::{HostSample, HostShares};
use super::{load_average, rest_mib, start_latchkey, Bench, LOGIN_CONNECTIONS, REFRESH_CLIENTS};
use super::{register_and_log_in, MIXED_CONNECTIONS};
use crate::api::{Api, Creds};
use crate::scenarios::{self, Target};
use crate::stats::{Summary, Window};

/// The target: refreshes per second per core of Latchkey's CPU.
const PER_CORE_TARGET: f64 = 3_000.0;

/// A scenario on a target with the users: a fresh future each call.
type Fut = std::pin::Pin<Box<dyn std::future::Future<Output = Result<Summary>>>>;
type Make = dyn Fn(Target, Arc<Vec<Creds>>) -> Fut;

/// Host samples of every call of one side's scenario, in call (= round) order.
type Calls = Arc<Mutex<Vec<Vec<HostSample>>>>;

/// Run `scenario` while sampling the host every 50 ms (and `pg_stat_wal` every 250 ms
/// through `wal`, if given); the samples go to `calls`.
async fn sampled<F>(calls: Calls, wal: Option<String>, scenario: F) -> Result<Summary>
where
    F: std::future::Future<Output = Result<Summary>>,
{
    let mut wal = match wal {
        Some(url) => Some(PgConnection::connect(&url).await?),
        None => None,
    };
    let samples = Arc::new(Mutex::new(Vec::new()));
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let sampler = {
        let (samples, done) = (samples.clone(), done.clone());
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_millis(50));
            let mut n = 0u32;
            while !done.load(std::sync::atomic::Ordering::Relaxed) {
                tick.tick().await;
                let mut sample = HostSample::now();
                n += 1;
                if let (Some(conn), 0) = (wal.as_mut(), n % 5) {
                    sample.wal = sqlx::query_as::<_, (f64, f64)>(
                        "SELECT (pg_current_wal_lsn() - '0/0'::pg_lsn)::float8, wal_sync::float8 FROM pg_stat_wal",
                    )
                    .fetch_one(&mut *conn)
                    .await
                    .ok();
                }
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

/// The shares over `window` from one call's samples.
fn shares(samples: &[HostSample], window: &Window, hz: f64) -> HostShares {
    let first = samples.iter().find(|s| s.at >= window.from());
    let last = samples.iter().rev().find(|s| s.at <= window.until());
    let mut out = match (first, last) {
        (Some(a), Some(b)) => HostShares::between(a, b, hz),
        _ => HostShares::default(),
    };
    let with_wal = |s: &&HostSample| s.wal.is_some();
    let first = samples
        .iter()
        .filter(with_wal)
        .find(|s| s.at >= window.from());
    let last = samples
        .iter()
        .rev()
        .filter(with_wal)
        .find(|s| s.at <= window.until());
    if let (Some(a), Some(b)) = (first, last) {
        out.wal = HostShares::between(a, b, hz).wal;
    }
    out
}

fn pct(x: Option<f64>) -> String {
    x.map_or_else(|| "-".to_owned(), |v| format!("{:.0}%", v * 100.0))
}

async fn admin(url: &str) -> Result<PgConnection> {
    PgConnection::connect(&format!("{url}/postgres"))
        .await
        .with_context(|| format!("connecting to {url}/postgres"))
}

/// What the PostgreSQL server says of itself, for the report.
pub(super) struct ServerFacts {
    pub(super) version: String,
    pub(super) synchronous_commit: String,
    pub(super) fsync: String,
}

/// Create the empty database `db` for one group's run; the server's facts.
pub(super) async fn create_scratch_database(url: &str, db: &str) -> Result<ServerFacts> {
    let mut conn = admin(url).await?;
    let show = |setting: &'static str| sqlx::query_scalar::<_, String>(setting);
    let facts = ServerFacts {
        version: show("SHOW server_version").fetch_one(&mut conn).await?,
        synchronous_commit: show("SHOW synchronous_commit").fetch_one(&mut conn).await?,
        fsync: show("SHOW fsync").fetch_one(&mut conn).await?,
    };
    sqlx::query(&format!("CREATE DATABASE {db}"))
        .execute(&mut conn)
        .await?;
    conn.close().await?;
    Ok(facts)
}

/// Drop the database a group ran on (its connections too).
pub(super) async fn drop_scratch_database(url: &str, db: &str) -> Result<()> {
    let mut conn = admin(url).await?;
    sqlx::query(&format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)"))
        .execute(&mut conn)
        .await?;
    conn.close().await?;
    Ok(())
}

/// Create the database, run the scenarios, drop the database; the Markdown section.
pub(super) async fn run(bench: &mut Bench<'_>, tmp: &Path, url: &str) -> Result<String> {
    let url = url.trim_end_matches('/');
    let db = format!("latchkey_bench_{}", std::process::id());
    let ServerFacts {
        version,
        synchronous_commit: sync_commit,
        fsync,
    } = create_scratch_database(url, &db).await?;
    let result = measure(bench, tmp, &format!("{url}/{db}")).await;
    drop_scratch_database(url, &db).await?;
    let (comparisons, extra) = result?;
    let mut out = String::from("\n### PostgreSQL under load\n\n");
    let _ = writeln!(
        out,
        "PostgreSQL {version} on this machine (`synchronous_commit={sync_commit}`, `fsync={fsync}`), \
         database `{db}` created for the run and dropped after; Latchkey (EdDSA) on it, and on SQLite in \
         the same run as the reference. Latchkey pinned to core 0 and the load generator to core 1; \
         PostgreSQL, a system service, is not pinned: its CPU comes out of the same two cores. \
         {extra}\n"
    );
    table(&mut out, &comparisons, "PostgreSQL / SQLite");
    Ok(out)
}

async fn measure(
    bench: &mut Bench<'_>,
    tmp: &Path,
    db_url: &str,
) -> Result<(Vec<Comparison>, String)> {
    let settings = bench.settings;
    let timing = settings.timing;
    let hz = bench.hz;
    let load_start = load_average();
    eprintln!("== Latchkey on PostgreSQL ({db_url}) and on SQLite");
    let pg_server = start_latchkey(
        settings,
        "Latchkey EdDSA, PostgreSQL",
        "EdDSA",
        &tmp.join("latchkey-pg"),
        &[("LATCHKEY_DATABASE_URL", db_url)],
        "server.log",
    )
    .await?;
    let pg_rest = rest_mib(&pg_server).await;
    let lite_server = start_latchkey(
        settings,
        "Latchkey EdDSA, SQLite",
        "EdDSA",
        &tmp.join("latchkey-pg-reference"),
        &[],
        "server.log",
    )
    .await?;
    let lite_rest = rest_mib(&lite_server).await;
    let target = |addr| Target {
        addr,
        api: Api::Latchkey,
    };
    let (pg, lite) = (target(pg_server.addr), target(lite_server.addr));
    let (users, _) = register_and_log_in(pg, settings.users).await?;
    register_and_log_in(lite, settings.users).await?;

    let pg_calls: Calls = Arc::default();
    let lite_calls: Calls = Arc::default();
    let side_run =
        |t: Target, calls: &Calls, wal: Option<String>, make: Arc<Make>| -> Run<'static> {
            let (calls, users) = (calls.clone(), Arc::new(users.clone()));
            Box::new(move || {
                let (calls, users, make, wal) =
                    (calls.clone(), users.clone(), make.clone(), wal.clone());
                Box::pin(async move { sampled(calls, wal, make(t, users)).await })
            })
        };
    let refresh: Arc<Make> = Arc::new(move |t: Target, users: Arc<Vec<Creds>>| -> Fut {
        Box::pin(async move { scenarios::refresh_chains(t, &users, REFRESH_CLIENTS, timing).await })
    });
    let login: Arc<Make> = Arc::new(move |t: Target, users: Arc<Vec<Creds>>| -> Fut {
        Box::pin(async move {
            Ok(scenarios::logins(t, &users, LOGIN_CONNECTIONS, timing.for_logins()).await)
        })
    });
    let mixed: Arc<Make> = Arc::new(move |t: Target, users: Arc<Vec<Creds>>| -> Fut {
        Box::pin(async move {
            Ok(scenarios::mixed(t, &users, MIXED_CONNECTIONS, timing)
                .await?
                .all)
        })
    });
    let mut comparisons = Vec::new();
    let mut cpu_rows = String::new();
    for (scenario, conns, rounds, make) in [
        ("refresh chains", REFRESH_CLIENTS, settings.rounds, refresh),
        ("login", LOGIN_CONNECTIONS, 1, login),
        ("mixed 90/9/1", MIXED_CONNECTIONS, 1, mixed),
    ] {
        pg_calls.lock().map(|mut c| c.clear()).ok();
        lite_calls.lock().map(|mut c| c.clear()).ok();
        let sides = [
            Side {
                name: "Latchkey EdDSA, PostgreSQL",
                server: &pg_server,
                rest: pg_rest,
                peer: false,
                run: side_run(pg, &pg_calls, Some(db_url.to_owned()), make.clone()),
            },
            Side {
                name: "Latchkey EdDSA, SQLite",
                server: &lite_server,
                rest: lite_rest,
                peer: true,
                run: side_run(lite, &lite_calls, None, make.clone()),
            },
        ];
        let c = compare(bench, scenario, conns, rounds, &sides).await?;
        for (side, calls) in [(0, &pg_calls), (1, &lite_calls)] {
            let m = &c.sides[side];
            let host = calls
                .lock()
                .ok()
                .and_then(|calls| {
                    calls
                        .get(c.chosen)
                        .map(|s| shares(s, &m.summary.window, hz))
                })
                .unwrap_or_default();
            let lk = m.cpu.server;
            let both = match (lk, host.postgres) {
                (Some(a), Some(b)) if side == 0 => Some(a + b),
                (Some(a), _) => Some(a),
                _ => None,
            };
            let per = |share: Option<f64>| {
                share
                    .filter(|s| *s > 0.0)
                    .map_or_else(|| "-".to_owned(), |s| format!("{:.0}", m.summary.rate / s))
            };
            let cores: Vec<String> = host
                .cores
                .iter()
                .map(|c| format!("{:.0}%", c * 100.0))
                .collect();
            let wal = host
                .wal
                .filter(|_| side == 0 && m.summary.rate > 0.0)
                .map_or_else(
                    || "-".to_owned(),
                    |(bytes, syncs)| {
                        format!(
                            "{:.0} B, {:.2} fsyncs",
                            bytes / m.summary.rate,
                            syncs / m.summary.rate
                        )
                    },
                );
            let _ = writeln!(
                cpu_rows,
                "| {scenario} | {} | {} | {} | {} | {} | {} | {} | {} | {wal} |",
                m.name,
                crate::report::thousands(m.summary.rate),
                pct(lk),
                if side == 0 {
                    pct(host.postgres)
                } else {
                    format!("({})", pct(host.postgres))
                },
                pct(m.cpu.loadgen),
                cores.join(" / "),
                per(lk),
                per(both)
            );
        }
        comparisons.push(c);
    }
    pg_server.stop();
    lite_server.stop();
    let refresh = &comparisons[0].sides[0];
    let per_core = refresh.per_core().unwrap_or(0.0);
    let met = |ok: bool| if ok { "met" } else { "**not met**" };
    let mut extra = format!(
        "Load average at the start: {load_start}; at the end: {}.\n\n\
         CPU in the reported round (shares of one core over the measured window; PostgreSQL = every \
         `postgres` process, its background writers included; in the SQLite rows it is PostgreSQL idling, \
         in parentheses):\n\n\
         | scenario | server | req/s | Latchkey CPU | PostgreSQL CPU | load-gen CPU | core 0 / core 1 busy | req/s per Latchkey core | req/s per core of Latchkey + PostgreSQL | WAL per request (cluster-wide) |\n\
         |---|---|---:|---:|---:|---:|---:|---:|---:|---:|\n{cpu_rows}\n",
        load_average()
    );
    let _ = write!(
        extra,
        "Targets: refresh ≥ {PER_CORE_TARGET:.0}/s per Latchkey core at synchronous_commit=on: {:.0}/s per \
         core ({}/s at {} of a core): {}. Refresh p99 < 20 ms: {:.1} ms: {}.",
        per_core,
        crate::report::thousands(refresh.summary.rate),
        pct(refresh.cpu.server),
        met(per_core >= PER_CORE_TARGET),
        refresh.summary.p99_ms,
        met(refresh.summary.p99_ms < 20.0)
    );
    Ok((comparisons, extra))
}
