//! Side-by-side comparisons in alternating rounds: several servers (or one server under
//! several loads), each measured once per round, and every side's row taken from the
//! round whose ratio (the first side over the best of the reference sides) is the median.

use std::future::Future;
use std::pin::Pin;

use std::fmt::Write as _;

use anyhow::Result;

use super::Bench;
use crate::report::{mib, ms, percent, thousands, Cpu};
use crate::servers::ServerProcess;
use crate::stats::Summary;

/// One measurement of a side: a fresh future each call.
pub(super) type Run<'a> = Box<dyn Fn() -> Pin<Box<dyn Future<Output = Result<Summary>> + 'a>> + 'a>;

/// One server under one load, as a comparison measures it.
pub(super) struct Side<'s, 'r> {
    pub(super) name: &'static str,
    pub(super) server: &'s ServerProcess,
    /// `VmRSS` at rest, MiB.
    pub(super) rest: Option<f64>,
    /// A reference side: the ratio divides the first side by the best of these.
    pub(super) peer: bool,
    pub(super) run: Run<'r>,
}

/// A side's row: the round of median ratio, the highest peak of all rounds.
#[derive(Debug, Clone)]
pub(crate) struct Measured {
    pub(crate) name: &'static str,
    pub(crate) summary: Summary,
    pub(crate) cpu: Cpu,
    pub(crate) rest: Option<f64>,
    pub(crate) peak: Option<f64>,
    /// A reference side (see [`Side::peer`]).
    pub(crate) reference: bool,
}

/// One comparison: the sides' rows and the first side's ratio to the best reference.
#[derive(Debug, Clone)]
pub(crate) struct Comparison {
    pub(crate) scenario: &'static str,
    pub(crate) connections: usize,
    pub(crate) sides: Vec<Measured>,
    /// The first side / the best reference side, by round.
    pub(crate) ratios: Vec<f64>,
    /// The reported round.
    pub(crate) chosen: usize,
    /// Every side's requests per second, by round.
    pub(crate) rates: Vec<Vec<f64>>,
}

impl Measured {
    /// Requests per second per core of server CPU: what the server does with the CPU it
    /// got, which a starved load generator or a shared core does not change.
    pub(crate) fn per_core(&self) -> Option<f64> {
        self.cpu
            .server
            .filter(|share| *share > 0.0)
            .map(|share| self.summary.rate / share)
    }
}

impl Comparison {
    /// The reported ratio: the median round's.
    pub(crate) fn ratio(&self) -> f64 {
        self.ratios[self.chosen]
    }

    /// Side `side` over side `reference`, by round, and the median of those.
    pub(crate) fn ratio_of(&self, side: usize, reference: usize) -> (Vec<f64>, f64) {
        let by_round: Vec<f64> = self.rates[side]
            .iter()
            .zip(&self.rates[reference])
            .map(|(a, b)| a / b)
            .collect();
        let mut sorted = by_round.clone();
        sorted.sort_by(f64::total_cmp);
        let median = sorted.get(sorted.len() / 2).copied().unwrap_or(f64::NAN);
        (by_round, median)
    }

    /// The first side's requests per server core over the best reference side's, in the
    /// reported round.
    pub(crate) fn per_core_ratio(&self) -> Option<f64> {
        let first = self.sides.first()?.per_core()?;
        let best = self
            .sides
            .iter()
            .skip(1)
            .filter(|s| s.reference)
            .filter_map(Measured::per_core)
            .reduce(f64::max)?;
        Some(first / best)
    }
}

/// Measure every side `rounds` times in alternation.
pub(super) async fn compare(
    bench: &mut Bench<'_>,
    scenario: &'static str,
    connections: usize,
    rounds: usize,
    sides: &[Side<'_, '_>],
) -> Result<Comparison> {
    let rounds = rounds.max(1);
    let mut runs: Vec<Vec<(Summary, Cpu, Option<f64>)>> = vec![Vec::new(); sides.len()];
    for round in 0..rounds {
        for (i, side) in sides.iter().enumerate() {
            let (summary, peak, samples) = bench.measure(side.server, (side.run)()).await?;
            eprintln!(
                "    round {} {} {scenario}: {summary}",
                round + 1,
                side.name
            );
            runs[i].push((summary, samples.over(&summary.window, bench.hz), peak));
        }
    }
    let ratio = |round: usize| {
        let best_peer = sides
            .iter()
            .zip(&runs)
            .filter(|(side, _)| side.peer)
            .map(|(_, r)| r[round].0.rate)
            .fold(0.0, f64::max);
        runs[0][round].0.rate / best_peer
    };
    let ratios: Vec<f64> = (0..rounds).map(ratio).collect();
    let mut order: Vec<usize> = (0..rounds).collect();
    order.sort_by(|&a, &b| ratios[a].total_cmp(&ratios[b]));
    let chosen = order[order.len() / 2];
    let rates = runs
        .iter()
        .map(|r| r.iter().map(|x| x.0.rate).collect())
        .collect();
    let sides = sides
        .iter()
        .zip(&runs)
        .map(|(side, r)| Measured {
            name: side.name,
            summary: r[chosen].0,
            cpu: r[chosen].1,
            rest: side.rest,
            peak: r.iter().filter_map(|x| x.2).reduce(f64::max),
            reference: side.peer,
        })
        .collect();
    Ok(Comparison {
        scenario,
        connections,
        sides,
        ratios,
        chosen,
        rates,
    })
}

/// The reported ratio in bold, and every round's.
pub(super) fn ratios(c: &Comparison) -> String {
    let x = |r: f64| {
        if !r.is_finite() {
            "-".to_owned()
        } else if r >= 10.0 {
            format!("{r:.1}x")
        } else {
            format!("{r:.2}x")
        }
    };
    let by_round: Vec<String> = c.ratios.iter().map(|&r| x(r)).collect();
    if by_round.len() > 1 {
        format!("**{}** (rounds {})", x(c.ratio()), by_round.join(", "))
    } else {
        format!("**{}**", x(c.ratio()))
    }
}

/// The comparisons as one Markdown table; `ratio` heads the ratio column.
pub(super) fn table(out: &mut String, comparisons: &[Comparison], ratio: &str) {
    let _ = writeln!(
        out,
        "| scenario | server: request | conns | req/s | p50 ms | p99 ms | errors | server CPU | req/s per server core | RSS rest MiB | RSS peak MiB | {ratio} | the same per server core |\n\
         |---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    );
    for c in comparisons {
        for (i, side) in c.sides.iter().enumerate() {
            let cell = if i == 0 { ratios(c) } else { String::new() };
            let per_core_cell = match (i, c.per_core_ratio()) {
                (0, Some(r)) => format!("{r:.2}x"),
                _ => String::new(),
            };
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
                c.scenario,
                side.name,
                c.connections,
                thousands(side.summary.rate),
                ms(side.summary.p50_ms),
                ms(side.summary.p99_ms),
                side.summary.errors,
                percent(side.cpu.server),
                side.per_core().map_or_else(|| "-".to_owned(), thousands),
                mib(side.rest),
                mib(side.peak),
                cell,
                per_core_cell
            );
        }
    }
}
