//! What the benchmark reads about the machine from /proc: the load average, the CPU
//! model, CPU time per core and of PostgreSQL's processes, other processes by name.

use std::time::Instant;

pub(super) fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "?".to_owned())
}

pub(super) fn machine() -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let cpus = cpuinfo
        .lines()
        .filter(|l| l.starts_with("processor"))
        .count();
    let model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .map(|rest| rest.trim_start_matches([' ', '\t', ':']).to_owned())
        .unwrap_or_else(|| "unknown CPU".to_owned());
    let memory = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|v| v.split_whitespace().next()?.parse::<f64>().ok())
        })
        .map_or_else(
            || "?".to_owned(),
            |kib| format!("{:.1} GiB", kib / 1_048_576.0),
        );
    format!("Machine: {cpus} CPUs ({model}), {memory} RAM")
}

/// Busy and total clock ticks of each core (`/proc/stat`; idle and iowait count as not
/// busy).
pub(super) fn core_ticks() -> Vec<(u64, u64)> {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    stat.lines()
        .filter(|l| l.starts_with("cpu") && l.as_bytes().get(3).is_some_and(u8::is_ascii_digit))
        .map(|l| {
            let v: Vec<u64> = l
                .split_whitespace()
                .skip(1)
                .filter_map(|x| x.parse().ok())
                .collect();
            let total: u64 = v.iter().take(8).sum();
            let idle = v.get(3).copied().unwrap_or(0) + v.get(4).copied().unwrap_or(0);
            (total - idle, total)
        })
        .collect()
}

/// The id of the first process named `comm` (e.g. `redis-server`), if any.
pub(super) fn pid_of(comm: &str) -> Option<u32> {
    std::fs::read_dir("/proc").ok()?.flatten().find_map(|e| {
        let pid: u32 = e.file_name().to_string_lossy().parse().ok()?;
        let name = std::fs::read_to_string(e.path().join("comm")).ok()?;
        (name.trim() == comm).then_some(pid)
    })
}

/// CPU time of every process named `postgres`, children reaped by them included (so a
/// backend that exits is still counted, through the postmaster), in clock ticks.
pub(super) fn postgres_ticks() -> u64 {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return 0;
    };
    entries
        .flatten()
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .bytes()
                .all(|b| b.is_ascii_digit())
        })
        .filter(|e| {
            std::fs::read_to_string(e.path().join("comm")).is_ok_and(|c| c.trim() == "postgres")
        })
        .filter_map(|e| {
            let stat = std::fs::read_to_string(e.path().join("stat")).ok()?;
            let rest = &stat[stat.rfind(')')? + 2..];
            let f: Vec<u64> = rest
                .split_whitespace()
                .skip(11)
                .take(4)
                .filter_map(|x| x.parse().ok())
                .collect();
            Some(f.iter().sum::<u64>())
        })
        .sum()
}

/// One sample of the machine's CPU counters.
#[derive(Debug, Clone)]
pub(super) struct HostSample {
    pub(super) at: Instant,
    pub(super) postgres: u64,
    pub(super) cores: Vec<(u64, u64)>,
    /// PostgreSQL's WAL bytes and WAL fsyncs so far (`pg_stat_wal`, the whole cluster),
    /// where read.
    pub(super) wal: Option<(f64, f64)>,
}

impl HostSample {
    pub(super) fn now() -> Self {
        Self {
            at: Instant::now(),
            postgres: postgres_ticks(),
            cores: core_ticks(),
            wal: None,
        }
    }
}

/// PostgreSQL's share of one core and each core's busy share between two samples.
#[derive(Debug, Clone, Default)]
pub(super) struct HostShares {
    pub(super) postgres: Option<f64>,
    pub(super) cores: Vec<f64>,
    /// WAL bytes and WAL fsyncs per second.
    pub(super) wal: Option<(f64, f64)>,
}

impl HostShares {
    pub(super) fn between(a: &HostSample, b: &HostSample, hz: f64) -> Self {
        let seconds = (b.at - a.at).as_secs_f64() * hz;
        if seconds <= 0.0 {
            return Self::default();
        }
        let wall = (b.at - a.at).as_secs_f64();
        Self {
            wal: a
                .wal
                .zip(b.wal)
                .map(|(x, y)| ((y.0 - x.0) / wall, (y.1 - x.1) / wall)),
            postgres: Some(b.postgres.saturating_sub(a.postgres) as f64 / seconds),
            cores: a
                .cores
                .iter()
                .zip(&b.cores)
                .map(|(x, y)| {
                    let total = y.1.saturating_sub(x.1) as f64;
                    if total > 0.0 {
                        y.0.saturating_sub(x.0) as f64 / total
                    } else {
                        0.0
                    }
                })
                .collect(),
        }
    }
}
