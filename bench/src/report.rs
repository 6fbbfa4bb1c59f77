//! The results as Markdown: one table row per (server, scenario), ratios against the
//! peer and the ceiling, and the targets, met or not.

use std::fmt::Write as _;

use crate::seed::SeedReport;
use crate::stats::Summary;

/// Which server a row measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum System {
    /// Latchkey (release build, SQLite).
    Latchkey,
    /// The Express peer, with `KEYOBJ=0` or `1`.
    Peer {
        /// Pre-parsed `KeyObject`s.
        keyobj: bool,
    },
    /// The bare verifying handler.
    Ceiling,
}

/// What a row measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Scenario {
    /// 1. Protected `GET` with one valid token.
    Protected,
    /// 2. Refresh chains.
    Refresh,
    /// 3. Logins.
    Login,
    /// Logins of the login-flood scenario.
    FloodLogins,
    /// Refresh chains during the login flood.
    FloodRefresh,
    /// 4. 90% protected, 9% refresh, 1% login.
    Mixed,
    /// Refresh chains against the seeded store.
    RefreshSeeded,
    /// Refresh chains against an empty store, alternating with [`Scenario::RefreshSeeded`].
    RefreshEmptyPaired,
}

impl Scenario {
    /// The scenario as the table names it.
    pub(crate) fn label(self) -> &'static str {
        match self {
            Self::Protected => "protected GET",
            Self::Refresh => "refresh chains",
            Self::Login => "login",
            Self::FloodLogins => "login flood: logins",
            Self::FloodRefresh => "login flood: refreshes",
            Self::Mixed => "mixed 90/9/1",
            Self::RefreshSeeded => "refresh chains, seeded store",
            Self::RefreshEmptyPaired => "refresh chains, empty store (paired)",
        }
    }
}

/// Shares of one core used during a scenario's measured window.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Cpu {
    /// By the server process (all its threads).
    pub(crate) server: Option<f64>,
    /// By this load generator.
    pub(crate) loadgen: Option<f64>,
}

/// One measured (server, scenario).
#[derive(Debug, Clone)]
pub(crate) struct Row {
    /// The server.
    pub(crate) system: System,
    /// Its signing algorithm.
    pub(crate) alg: &'static str,
    /// A setting that differs from the defaults, if any.
    pub(crate) variant: Option<&'static str>,
    /// The scenario.
    pub(crate) scenario: Scenario,
    /// Connections or clients, as text (`64`, `32+8`).
    pub(crate) connections: String,
    /// The measurement.
    pub(crate) summary: Summary,
    /// `VmRSS` at rest after start-up, MiB.
    pub(crate) rest_mib: Option<f64>,
    /// `VmHWM` during the scenario (setup included), MiB.
    pub(crate) peak_mib: Option<f64>,
    /// CPU use in the window.
    pub(crate) cpu: Cpu,
}

impl Row {
    fn server(&self) -> String {
        let name = match self.system {
            System::Latchkey => format!("Latchkey {}", self.alg),
            System::Peer { keyobj } => format!("peer {} KEYOBJ={}", self.alg, u8::from(keyobj)),
            System::Ceiling => format!("ceiling {}", self.alg),
        };
        match self.variant {
            Some(variant) => format!("{name}, {variant}"),
            None => name,
        }
    }
}

/// Everything a report needs besides the rows.
#[derive(Debug, Clone)]
pub(crate) struct Facts {
    /// Machine and run description lines.
    pub(crate) header: Vec<String>,
    /// Median Argon2id (OWASP) verification time on the load generator's core, ms.
    pub(crate) argon2_ms: f64,
    /// The seeding run, if any.
    pub(crate) seed: Option<SeedReport>,
    /// Extra lines after the table.
    pub(crate) notes: Vec<String>,
    /// Sections of their own (Markdown), after the targets.
    pub(crate) sections: Vec<String>,
}

/// The row of the default configuration (no variant).
fn find<'a>(rows: &'a [Row], system: System, alg: &str, scenario: Scenario) -> Option<&'a Row> {
    rows.iter().find(|r| {
        r.system == system && r.alg == alg && r.scenario == scenario && r.variant.is_none()
    })
}

/// The best peer row for a Latchkey row: same scenario, same algorithm if the peer has
/// it (ES256, HS256), else any algorithm (the peer has no EdDSA).
fn best_peer<'a>(rows: &'a [Row], row: &Row) -> Option<&'a Row> {
    let same_alg_exists = rows
        .iter()
        .any(|r| matches!(r.system, System::Peer { .. }) && r.alg == row.alg);
    rows.iter()
        .filter(|r| matches!(r.system, System::Peer { .. }) && r.scenario == row.scenario)
        .filter(|r| !same_alg_exists || r.alg == row.alg)
        .max_by(|a, b| a.summary.rate.total_cmp(&b.summary.rate))
}

fn ratio(a: f64, b: f64) -> String {
    if b > 0.0 && a.is_finite() {
        format!("{:.2}x", a / b)
    } else {
        "-".to_owned()
    }
}

pub(crate) fn thousands(value: f64) -> String {
    let digits = format!("{:.0}", value.max(0.0));
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

pub(crate) fn mib(value: Option<f64>) -> String {
    value.map_or_else(|| "-".to_owned(), |v| format!("{v:.1}"))
}

pub(crate) fn percent(value: Option<f64>) -> String {
    value.map_or_else(|| "-".to_owned(), |v| format!("{:.0}%", v * 100.0))
}

pub(crate) fn ms(value: f64) -> String {
    if value.is_nan() {
        "-".to_owned()
    } else if value < 10.0 {
        format!("{value:.2}")
    } else {
        format!("{value:.1}")
    }
}

/// The results table.
pub(crate) fn table(rows: &[Row]) -> String {
    let mut out = String::from(
        "| server | scenario | conns | req/s | p50 ms | p99 ms | errors | server CPU | load-gen CPU | RSS rest MiB | RSS peak MiB | Latchkey/peer | Latchkey/ceiling |\n\
         |---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    for row in rows {
        let (vs_peer, vs_ceiling) = if row.system == System::Latchkey {
            let peer = best_peer(rows, row).map_or_else(
                || "-".to_owned(),
                |p| {
                    format!(
                        "{} (vs {})",
                        ratio(row.summary.rate, p.summary.rate),
                        p.server().trim_start_matches("peer ")
                    )
                },
            );
            let ceiling = find(rows, System::Ceiling, row.alg, row.scenario).map_or_else(
                || "-".to_owned(),
                |c| ratio(row.summary.rate, c.summary.rate),
            );
            (peer, ceiling)
        } else {
            ("".to_owned(), "".to_owned())
        };
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            row.server(),
            row.scenario.label(),
            row.connections,
            thousands(row.summary.rate),
            ms(row.summary.p50_ms),
            ms(row.summary.p99_ms),
            row.summary.errors,
            percent(row.cpu.server),
            percent(row.cpu.loadgen),
            mib(row.rest_mib),
            mib(row.peak_mib),
            vs_peer,
            vs_ceiling,
        );
    }
    out
}

struct Check {
    target: String,
    measured: String,
    met: Option<bool>,
}

fn check(target: &str, measured: String, met: Option<bool>) -> Check {
    Check {
        target: target.to_owned(),
        measured,
        met,
    }
}

fn targets(rows: &[Row], facts: &Facts) -> Vec<Check> {
    let lk = |alg, scenario| find(rows, System::Latchkey, alg, scenario);
    let missing = || ("not measured".to_owned(), None);
    let mut checks = Vec::new();

    let (measured, met) = match (
        lk("EdDSA", Scenario::Protected),
        find(rows, System::Ceiling, "EdDSA", Scenario::Protected),
    ) {
        (Some(l), Some(c)) => {
            let r = l.summary.rate / c.summary.rate;
            (
                format!(
                    "{:.0}% ({} vs {} req/s)",
                    r * 100.0,
                    thousands(l.summary.rate),
                    thousands(c.summary.rate)
                ),
                Some(r >= 0.85),
            )
        }
        _ => missing(),
    };
    checks.push(check(
        "protected, EdDSA: >= 85% of the ceiling",
        measured,
        met,
    ));

    let peer_es256 = rows
        .iter()
        .filter(|r| {
            matches!(r.system, System::Peer { .. })
                && r.alg == "ES256"
                && r.scenario == Scenario::Protected
        })
        .max_by(|a, b| a.summary.rate.total_cmp(&b.summary.rate));
    let (measured, met) = match (lk("ES256", Scenario::Protected), peer_es256) {
        (Some(l), Some(p)) => {
            let r = l.summary.rate / p.summary.rate;
            (
                format!(
                    "{r:.1}x ({} vs {} req/s, {})",
                    thousands(l.summary.rate),
                    thousands(p.summary.rate),
                    p.server()
                ),
                Some(r >= 5.0),
            )
        }
        _ => missing(),
    };
    checks.push(check(
        "protected, ES256: >= 5x the peer's best",
        measured,
        met,
    ));

    let protected: Vec<&Row> = ["EdDSA", "ES256"]
        .into_iter()
        .filter_map(|alg| lk(alg, Scenario::Protected))
        .collect();
    let (measured, met) = if protected.is_empty() {
        missing()
    } else {
        (
            protected
                .iter()
                .map(|r| format!("{} {} ms", r.alg, ms(r.summary.p99_ms)))
                .collect::<Vec<_>>()
                .join(", "),
            Some(protected.iter().all(|r| r.summary.p99_ms < 10.0)),
        )
    };
    checks.push(check("protected: p99 < 10 ms", measured, met));

    let refresh = lk("EdDSA", Scenario::Refresh);
    let (measured, met) = match refresh {
        Some(r) => (
            format!(
                "{} rotations/s, p99 {} ms",
                thousands(r.summary.rate),
                ms(r.summary.p99_ms)
            ),
            Some(r.summary.rate >= 5000.0 && r.summary.p99_ms < 20.0),
        ),
        None => missing(),
    };
    checks.push(check(
        "refresh chains, SQLite synchronous=FULL: >= 5,000 rotations/s, p99 < 20 ms",
        measured,
        met,
    ));

    let limit = 1000.0 / facts.argon2_ms;
    let (measured, met) = match lk("EdDSA", Scenario::Login) {
        Some(r) => (
            format!(
                "{:.1} logins/s = {:.0}% of 1/hash time ({:.1} ms/hash -> {limit:.1}/s)",
                r.summary.rate,
                r.summary.rate / limit * 100.0,
                facts.argon2_ms
            ),
            Some(r.summary.rate >= 0.9 * limit),
        ),
        None => missing(),
    };
    checks.push(check(
        "login at the Argon2id limit (>= 90% of 1/hash time)",
        measured,
        met,
    ));

    let (measured, met) = match lk("EdDSA", Scenario::FloodRefresh) {
        Some(r) => (
            format!(
                "p99 {} ms ({} refreshes/s)",
                ms(r.summary.p99_ms),
                thousands(r.summary.rate)
            ),
            Some(r.summary.p99_ms < 50.0),
        ),
        None => missing(),
    };
    checks.push(check(
        "refresh p99 < 50 ms during a login flood",
        measured,
        met,
    ));

    let rests: Vec<(&str, f64)> = rows
        .iter()
        .filter(|r| {
            r.system == System::Latchkey && r.scenario == Scenario::Protected && r.variant.is_none()
        })
        .filter_map(|r| r.rest_mib.map(|m| (r.alg, m)))
        .collect();
    let (measured, met) = if rests.is_empty() {
        missing()
    } else {
        (
            rests
                .iter()
                .map(|(alg, m)| format!("{alg} {m:.1} MiB"))
                .collect::<Vec<_>>()
                .join(", "),
            Some(rests.iter().all(|(_, m)| *m < 16.0)),
        )
    };
    checks.push(check("RSS < 16 MiB at rest", measured, met));

    let (measured, met) = match lk("EdDSA", Scenario::Mixed).and_then(|r| r.peak_mib) {
        Some(peak) => (format!("peak {peak:.1} MiB"), Some(peak < 48.0)),
        None => missing(),
    };
    checks.push(check("RSS < 48 MiB under mixed load", measured, met));

    let (measured, met) = match (
        lk("EdDSA", Scenario::RefreshEmptyPaired),
        lk("EdDSA", Scenario::RefreshSeeded),
        facts.seed,
    ) {
        (Some(empty), Some(seeded), Some(seed)) => {
            let r = seeded.summary.rate / empty.summary.rate;
            (
                format!(
                    "{:.0}% of the empty store ({} vs {} rotations/s, {} users/sessions seeded)",
                    r * 100.0,
                    thousands(seeded.summary.rate),
                    thousands(empty.summary.rate),
                    thousands(seed.users as f64)
                ),
                // Fewer than 1M seeded (a --quick run) says nothing about the target.
                (seed.users >= 1_000_000).then_some(r >= 0.8),
            )
        }
        _ => missing(),
    };
    checks.push(check(
        "1M stored sessions: refresh throughput within 20% of the empty store",
        measured,
        met,
    ));
    checks
}

/// The whole report: header, table, notes, targets.
pub(crate) fn render(rows: &[Row], facts: &Facts) -> String {
    let mut out = String::new();
    for line in &facts.header {
        let _ = writeln!(out, "{line}");
    }
    out.push('\n');
    out.push_str(&table(rows));
    out.push('\n');
    for line in &facts.notes {
        let _ = writeln!(out, "{line}");
    }
    out.push_str("\n| target | measured | met |\n|---|---|---|\n");
    for c in targets(rows, facts) {
        let met = match c.met {
            Some(true) => "yes",
            Some(false) => "**no**",
            None => "-",
        };
        let _ = writeln!(out, "| {} | {} | {met} |", c.target, c.measured);
    }
    for section in &facts.sections {
        out.push_str(section);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thousands_separators() {
        assert_eq!(thousands(0.4), "0");
        assert_eq!(thousands(999.0), "999");
        assert_eq!(thousands(12_345.6), "12,346");
        assert_eq!(thousands(1_000_000.0), "1,000,000");
    }
}
