//! 10 million sessions (`--sessions-10m`): a store seeded with 10,000,000 users, each
//! with a session, against an empty store, both servers up at once and measured in
//! alternating rounds on refresh chains and on logins; the seeded server's memory
//! across all of it.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::Result;

use super::compare::{compare, ratios, table, Run, Side};
use super::{load_average, rest_mib, start_latchkey, Bench, LOGIN_CONNECTIONS, REFRESH_CLIENTS};
use crate::api::{Api, Creds};
use crate::scenarios::{self, Target};
use crate::seed;

/// Users (and sessions) in the seeded store.
pub(super) const USERS: u64 = 10_000_000;
/// The memory target for the seeded server, MiB.
const RSS_LIMIT_MIB: f64 = 64.0;

/// Seed, compare, and return the Markdown section.
pub(super) async fn run(bench: &mut Bench<'_>, tmp: &Path, users: u64) -> Result<String> {
    let settings = bench.settings;
    let timing = settings.timing;
    let load_before = load_average();
    eprintln!("== seeding {users} users with one session each");
    let dir = tmp.join("latchkey-10m");
    std::fs::create_dir_all(&dir)?;
    let seeded_report = seed::seed(&dir.join("latchkey.db"), users, 1_000.min(users)).await?;
    eprintln!("  {seeded_report}");
    let load_seeded = load_average();

    let seeded_server =
        start_latchkey(settings, "Latchkey, 10M", "EdDSA", &dir, &[], "server.log").await?;
    let seeded_rest = rest_mib(&seeded_server).await;
    let empty_dir = tmp.join("latchkey-10m-empty");
    let empty_server = start_latchkey(
        settings,
        "Latchkey, empty",
        "EdDSA",
        &empty_dir,
        &[],
        "server.log",
    )
    .await?;
    let empty_rest = rest_mib(&empty_server).await;
    let target = |addr| Target {
        addr,
        api: Api::Latchkey,
    };
    let (seeded, empty) = (target(seeded_server.addr), target(empty_server.addr));
    // Chains spread over the whole seeded store; the same accounts on the empty one.
    let step = (users / REFRESH_CLIENTS as u64).max(1);
    let chain_users: Vec<Creds> = (0..REFRESH_CLIENTS as u64)
        .map(|i| Creds::seeded((i * step).min(users - 1)))
        .collect();
    scenarios::register_all(empty, &chain_users, 8).await?;

    let refresh_on = |t: Target| -> Run<'static> {
        let users = chain_users.clone();
        Box::new(move || {
            let users = users.clone();
            Box::pin(
                async move { scenarios::refresh_chains(t, &users, REFRESH_CLIENTS, timing).await },
            )
        })
    };
    let login_on = |t: Target| -> Run<'static> {
        let users = chain_users.clone();
        Box::new(move || {
            let users = users.clone();
            Box::pin(async move {
                Ok(scenarios::logins(t, &users, LOGIN_CONNECTIONS, timing.for_logins()).await)
            })
        })
    };
    let sides = |run: &dyn Fn(Target) -> Run<'static>| {
        [
            Side {
                name: "Latchkey EdDSA, 10M sessions",
                server: &seeded_server,
                rest: seeded_rest,
                peer: false,
                run: run(seeded),
            },
            Side {
                name: "Latchkey EdDSA, empty store",
                server: &empty_server,
                rest: empty_rest,
                peer: true,
                run: run(empty),
            },
        ]
    };
    let refresh = compare(
        bench,
        "refresh chains",
        REFRESH_CLIENTS,
        settings.rounds,
        &sides(&refresh_on),
    )
    .await?;
    let login = compare(
        bench,
        "login",
        LOGIN_CONNECTIONS,
        settings.rounds,
        &sides(&login_on),
    )
    .await?;
    seeded_server.stop();
    empty_server.stop();

    let peak = [&refresh, &login]
        .iter()
        .filter_map(|c| c.sides[0].peak)
        .fold(seeded_rest.unwrap_or(0.0), f64::max);
    let mut out = String::from("\n### 10 million sessions\n\n");
    let _ = writeln!(
        out,
        "Seeding: {seeded_report}; {:.0} s in all (load average before: {load_before}; after: {load_seeded}). \
         Load average at the end: {}.\n",
        seeded_report.via_store_time.as_secs_f64() + seeded_report.bulk_time.as_secs_f64(),
        load_average()
    );
    let comparisons = [refresh, login];
    table(&mut out, &comparisons, "10M / empty");
    out.push_str("\n| target | measured | met |\n|---|---|---|\n");
    let met = |ok: bool| if ok { "yes" } else { "**no**" };
    let [refresh, login] = &comparisons;
    let _ = writeln!(
        out,
        "| refresh within 20% of the empty store (median of alternating rounds) | {} | {} |",
        ratios(refresh),
        met(refresh.ratio() >= 0.8)
    );
    let _ = writeln!(
        out,
        "| RSS under {RSS_LIMIT_MIB:.0} MiB during the run (seeded server, rest and every peak) | {peak:.1} MiB | {} |",
        met(peak < RSS_LIMIT_MIB)
    );
    let _ = writeln!(
        out,
        "| login unaffected (within the noise: at least 90% of the empty store) | {} | {} |",
        ratios(login),
        met(login.ratio() >= 0.9)
    );
    Ok(out)
}
