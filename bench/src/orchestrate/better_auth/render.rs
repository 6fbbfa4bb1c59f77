//! The better-auth comparison as a Markdown section: the side-by-side table, the
//! password hashes' cost, and the targets.

use std::fmt::Write as _;

use super::super::compare::{ratios, table, Comparison};
use super::HashTimes;
use crate::report::thousands;

/// Latchkey's password hash (`latchkey_core::password::HashCost::OWASP`).
const ARGON2: &str = "Argon2id m=19456 KiB, t=2, p=1 (OWASP)";
const ARGON2_MIB: f64 = 19.0;
/// better-auth's (`@better-auth/utils/password`, node:crypto `scrypt`, as pinned).
const SCRYPT: &str = "scrypt N=16384, r=16, p=1, 64-byte key (node:crypto, libuv pool)";
/// 128 * N * r bytes.
const SCRYPT_MIB: f64 = 32.0;

fn mean((a, b): (f64, f64)) -> f64 {
    (a + b) / 2.0
}

fn hashes(out: &mut String, comparisons: &[Comparison], hashes: &HashTimes) {
    let sign_in = comparisons.iter().find(|c| c.scenario == "sign-in");
    let rate = |i: usize| sign_in.and_then(|c| c.sides.get(i)).map(|s| s.summary.rate);
    out.push_str(
        "\n| password hash | parameters | memory per hash | verification on the server core (before / after the sign-in runs) | sign-ins/s limit (1 / mean) | sign-ins/s measured |\n\
         |---|---|---:|---:|---:|---:|\n",
    );
    for (name, params, memory, times, measured) in [
        ("Latchkey", ARGON2, ARGON2_MIB, hashes.argon2_ms, rate(0)),
        ("better-auth", SCRYPT, SCRYPT_MIB, hashes.scrypt_ms, rate(1)),
    ] {
        let limit = 1000.0 / mean(times);
        let measured = measured.map_or_else(
            || "-".to_owned(),
            |r| format!("{r:.1} ({:.0}% of the limit)", r / limit * 100.0),
        );
        let _ = writeln!(
            out,
            "| {name} | {params} | {memory:.0} MiB | {:.1} / {:.1} ms | {limit:.1} | {measured} |",
            times.0, times.1
        );
    }
    let _ = writeln!(
        out,
        "\nHash work: one better-auth verification costs {:.1}x the CPU time of one of Latchkey's \
         and {:.1}x its memory, so its sign-ins per core are bounded about {:.1}x lower; the \
         sign-in ratio above measures that, not the servers.",
        mean(hashes.scrypt_ms) / mean(hashes.argon2_ms),
        SCRYPT_MIB / ARGON2_MIB,
        mean(hashes.scrypt_ms) / mean(hashes.argon2_ms)
    );
}

fn targets(out: &mut String, comparisons: &[Comparison]) {
    out.push_str("\n| target | measured | met |\n|---|---|---|\n");
    for (scenario, goal) in [("protected request", 10.0), ("refresh", 3.0)] {
        let Some(c) = comparisons.iter().find(|c| c.scenario == scenario) else {
            continue;
        };
        let best = c
            .sides
            .iter()
            .skip(1)
            .filter(|s| s.name.starts_with("better-auth"));
        let best = best.max_by(|a, b| a.summary.rate.total_cmp(&b.summary.rate));
        let versus = best.map_or_else(String::new, |b| {
            format!(
                " ({} vs {} req/s, {})",
                thousands(c.sides[0].summary.rate),
                thousands(b.summary.rate),
                b.name
            )
        });
        let met = if !c.ratio().is_finite() {
            "-"
        } else if c.ratio() >= goal {
            "yes"
        } else {
            "**no**"
        };
        let per_core = c
            .per_core_ratio()
            .map_or_else(String::new, |r| format!("; per server core {r:.1}x"));
        let _ = writeln!(
            out,
            "| {scenario}: Latchkey >= {goal:.0}x better-auth's best, same run | {}{versus}{per_core} | {met} |",
            ratios(c)
        );
    }
}

/// The section: heading, what ran, the table, the hashes, the targets.
pub(super) fn section(
    comparisons: &[Comparison],
    hash_times: &HashTimes,
    (load_before, load_after): (&str, &str),
) -> String {
    let mut out = String::from("\n### Second peer: better-auth\n\n");
    let _ = writeln!(
        out,
        "better-auth as pinned in `bench/peers/better-auth` (SQLite through better-sqlite3 in WAL mode at \
         synchronous=FULL, JWT plugin with its default EdDSA keys, bearer plugin; NODE_ENV=production; \
         node:http), pinned to the server core like Latchkey, against a fresh Latchkey (EdDSA, defaults as above). \
         Each Latchkey row and better-auth row of a scenario comes from the same round (the one of median ratio); \
         peaks are the highest of all rounds. Load average before: {load_before}; after: {load_after}.\n"
    );
    table(&mut out, comparisons, "Latchkey / better-auth's best");
    hashes(&mut out, comparisons, hash_times);
    targets(&mut out, comparisons);
    out
}
