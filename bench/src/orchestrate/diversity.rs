//! Token diversity (`--only diversity`): the protected route with 100,000 distinct live
//! access tokens (100,000 seeded users with a session each), drawn uniformly and by a
//! Zipf law (s = 1.1), against the ceiling at EdDSA in alternating rounds: Latchkey with
//! its default verified-token cache and with a cache large enough for every token.
//!
//! The tokens come without a single login: the seeder makes each session's first refresh
//! token with the store's own refresh key, and one `POST /auth/refresh` each turns them
//! into access tokens (the server signs them as it would for any client).

use std::fmt::Write as _;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{bail, Result};

use super::compare::{compare, table, Comparison, Run, Side};
use super::{fetch_jwks, load_average, rest_mib, start_ceiling, start_latchkey, Bench};
use crate::api::Api;
use crate::client::Conn;
use crate::scenarios::Target;
use crate::seed;
use crate::servers::ServerProcess;
use crate::traffic::{self, Draw};

/// Distinct tokens (and seeded users).
pub(super) const TOKENS: usize = 100_000;
/// The Zipf exponent.
const ZIPF_S: f64 = 1.1;
/// `LATCHKEY_VERIFIED_TOKEN_CACHE`'s default (crates/latchkey/src/config.rs).
const DEFAULT_CACHE: usize = 4_096;
/// The large cache: room for every token.
const LARGE_CACHE: usize = 131_072;
const CONNECTIONS: usize = 64;
/// Connections for the unmeasured setup (exchanges, warm pass).
const SETUP_CONNECTIONS: usize = 32;

fn rss_now(server: &ServerProcess) -> Option<f64> {
    server.memory().ok().map(|m| m.rss_kib as f64 / 1024.0)
}

fn mib(x: Option<f64>) -> String {
    x.map_or_else(|| "-".to_owned(), |v| format!("{v:.1}"))
}

/// Seed, exchange, compare; the Markdown section.
pub(super) async fn run(bench: &mut Bench<'_>, tmp: &Path, tokens: usize) -> Result<String> {
    let settings = bench.settings;
    let timing = settings.timing;
    let load_start = load_average();
    eprintln!(
        "== token diversity: seeding {tokens} users, each with a session and a known refresh token"
    );
    let dir = tmp.join("latchkey-diversity");
    std::fs::create_dir_all(&dir)?;
    let (seeded, refresh_tokens) =
        seed::seed_with_tokens(&dir.join("latchkey.db"), tokens as u64, 0, tokens).await?;
    eprintln!("  {seeded}");

    let default_name: &'static str =
        Box::leak(format!("Latchkey EdDSA, cache {DEFAULT_CACHE} (default)").into_boxed_str());
    let large_name: &'static str =
        Box::leak(format!("Latchkey EdDSA, cache {LARGE_CACHE}").into_boxed_str());
    let target = |addr| Target {
        addr,
        api: Api::Latchkey,
    };
    // The exchange on a server of its own, stopped after: the measured servers start
    // fresh, so their memory is the protected route's and the cache's alone.
    let exchanger = start_latchkey(
        settings,
        "Latchkey (exchange)",
        "EdDSA",
        &dir,
        &[],
        "server-exchange.log",
    )
    .await?;
    let started = Instant::now();
    let access =
        traffic::exchange(target(exchanger.addr), &refresh_tokens, SETUP_CONNECTIONS).await?;
    let exchange_s = started.elapsed().as_secs_f64();
    exchanger.stop();
    eprintln!(
        "  {} refresh tokens exchanged for access tokens in {exchange_s:.1} s",
        access.len()
    );
    let small = start_latchkey(settings, default_name, "EdDSA", &dir, &[], "server.log").await?;
    let small_rest = rest_mib(&small).await;
    let access = Arc::new(access);

    let large_cache = LARGE_CACHE.to_string();
    let large = start_latchkey(
        settings,
        large_name,
        "EdDSA",
        &dir,
        &[("LATCHKEY_VERIFIED_TOKEN_CACHE", &large_cache)],
        "server-large-cache.log",
    )
    .await?;
    let large_rest = rest_mib(&large).await;
    let off = start_latchkey(
        settings,
        "Latchkey EdDSA, cache off",
        "EdDSA",
        &dir,
        &[("LATCHKEY_VERIFIED_TOKEN_CACHE", "0")],
        "server-cache-off.log",
    )
    .await?;
    let off_rest = rest_mib(&off).await;
    let jwks = tmp.join("jwks-diversity.json");
    fetch_jwks(target(small.addr), &jwks).await?;
    let ceiling =
        start_ceiling(settings, "EdDSA", &jwks, tmp.join("ceiling-diversity.log")).await?;
    let ceiling_rest = rest_mib(&ceiling).await;
    let check = Conn::new(ceiling.addr)
        .get("/auth/me", Some(&access[0]))
        .await?;
    if !check.ok() {
        bail!(
            "the ceiling refused a seeded session's token: {}",
            check.status
        );
    }

    // Steady state: every token presented once (not measured), as a token is presented
    // many times during its life; each cache then holds what its policy keeps.
    let mut warm = Vec::new();
    for server in [&small, &large, &off] {
        let started = Instant::now();
        let refused =
            traffic::present_all(target(server.addr), access.clone(), SETUP_CONNECTIONS).await?;
        if refused > 0 {
            bail!("{}: {refused} of the tokens were refused", server.name);
        }
        warm.push((started.elapsed().as_secs_f64(), rss_now(server)));
    }

    let ceiling_target = Target {
        addr: ceiling.addr,
        api: Api::Ceiling,
    };
    let on = |t: Target, draw: Draw| -> Run<'static> {
        let access = access.clone();
        Box::new(move || {
            let (access, draw) = (access.clone(), draw.clone());
            Box::pin(async move {
                traffic::protected_drawn(t, access, draw, CONNECTIONS, timing.for_protected()).await
            })
        })
    };
    let mut comparisons: Vec<Comparison> = Vec::new();
    let label = |shape: &str| -> &'static str {
        Box::leak(format!("protected, {tokens} tokens, {shape}").into_boxed_str())
    };
    for (scenario, draw) in [
        (label("uniform"), Draw::Uniform),
        (label("Zipf s=1.1"), Draw::zipf(tokens, ZIPF_S)),
    ] {
        eprintln!("== {scenario}");
        let sides = [
            Side {
                name: default_name,
                server: &small,
                rest: small_rest,
                peer: false,
                run: on(target(small.addr), draw.clone()),
            },
            Side {
                name: large_name,
                server: &large,
                rest: large_rest,
                peer: false,
                run: on(target(large.addr), draw.clone()),
            },
            Side {
                name: "Latchkey EdDSA, cache off",
                server: &off,
                rest: off_rest,
                peer: false,
                run: on(target(off.addr), draw.clone()),
            },
            Side {
                name: "ceiling EdDSA",
                server: &ceiling,
                rest: ceiling_rest,
                peer: true,
                run: on(ceiling_target, draw.clone()),
            },
        ];
        comparisons.push(compare(bench, scenario, CONNECTIONS, settings.rounds, &sides).await?);
    }
    let after = [rss_now(&small), rss_now(&large), rss_now(&off)];
    small.stop();
    large.stop();
    off.stop();
    ceiling.stop();

    let zipf = Draw::zipf(tokens, ZIPF_S);
    let mut out = String::from("\n### Token diversity\n\n");
    let _ = writeln!(
        out,
        "{tokens} seeded users, each with a session; their first refresh tokens exchanged for access tokens \
         on a server of its own, stopped before the others start ({exchange_s:.1} s, {:.0} refreshes/s over \
         {SETUP_CONNECTIONS} connections). Every token presented once to each Latchkey before the rounds \
         (warm pass: {:.1} s, {:.1} s, {:.1} s), so each cache holds what its policy keeps. Seeding: {seeded}. \
         Load average at the start: {load_start}; at the end: {}.\n",
        tokens as f64 / exchange_s,
        warm[0].0,
        warm[1].0,
        warm[2].0,
        load_average()
    );
    let _ = writeln!(
        out,
        "Share of draws on the {DEFAULT_CACHE} likeliest tokens: uniform {:.1}%, Zipf {:.1}% \
         (what a cache of {DEFAULT_CACHE} that kept exactly those would hit).\n",
        100.0 * Draw::Uniform.top_share(DEFAULT_CACHE, tokens),
        100.0 * zipf.top_share(DEFAULT_CACHE, tokens)
    );
    table(&mut out, &comparisons, "Latchkey (default cache) / ceiling");
    out.push_str(
        "\n| Latchkey | RSS at rest MiB | after the warm pass | after the rounds |\n|---|---:|---:|---:|\n",
    );
    for (i, (name, rest)) in [
        (default_name, small_rest),
        (large_name, large_rest),
        ("Latchkey EdDSA, cache off", off_rest),
    ]
    .iter()
    .enumerate()
    {
        let _ = writeln!(
            out,
            "| {name} | {} | {} | {} |",
            mib(*rest),
            mib(warm[i].1),
            mib(after[i])
        );
    }
    out.push_str("\n| target | measured (median of the per-round ratios to the ceiling) | met |\n|---|---|---|\n");
    let met = |ok: bool| if ok { "yes" } else { "**no**" };
    let rounds = |v: &[f64]| {
        v.iter()
            .map(|r| format!("{:.0}%", r * 100.0))
            .collect::<Vec<_>>()
            .join(", ")
    };
    for (c, label, need) in [
        (&comparisons[1], "Zipf ≥ the ceiling", 1.0),
        (&comparisons[0], "uniform ≥ 85% of the ceiling", 0.85),
    ] {
        for (side, name) in [
            (0, default_name),
            (1, large_name),
            (2, "Latchkey EdDSA, cache off"),
        ] {
            let (by_round, median) = c.ratio_of(side, 3);
            let _ = writeln!(
                out,
                "| {label}: {name} | **{:.0}%** (rounds {}) | {} |",
                median * 100.0,
                rounds(&by_round),
                met(median >= need)
            );
        }
    }
    Ok(out)
}
