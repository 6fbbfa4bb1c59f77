//! `all`: every server and scenario in one run, one server at a time, the server pinned
//! to core 0 and this load generator to core 1.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use latchkey_core::model::Password;
use latchkey_core::password::{HashCost, PasswordHasher};

use crate::api::{Api, Creds, PASSWORD};
use crate::client::Conn;
use crate::report::Cpu;
use crate::report::{self, Facts, Row, Scenario, System};
use crate::scenarios::{self, Target, Timing};
use crate::seed;
use crate::servers::{
    clock_ticks_per_second, cpu_ticks, free_addr, pin_self, pinned, ServerProcess,
};
use crate::stats::Summary;

mod better_auth;
mod compare;
mod diversity;
mod groups;
mod host;
mod postgres;
mod replicas;
mod sessions;
mod startup;

use host::{load_average, machine};

const ISSUER: &str = "http://latchkey.bench";
const AUDIENCE: &str = "latchkey-bench";
/// Core of the server under test; the load generator takes [`LOAD_CORE`].
const SERVER_CORE: usize = 0;
const LOAD_CORE: usize = 1;

const PROTECTED_CONNECTIONS: usize = 64;
const REFRESH_CLIENTS: usize = 32;
const LOGIN_CONNECTIONS: usize = 8;
const FLOOD_LOGIN_CONNECTIONS: usize = 32;
const FLOOD_REFRESH_CLIENTS: usize = 8;
const MIXED_CONNECTIONS: usize = 64;
/// Users registered on servers that do not run the mixed scenario.
const FEW_USERS: usize = 8;

/// Options of `all`.
#[derive(Debug, clap::Args)]
pub(crate) struct AllOptions {
    /// Short run for CI: 2 s per scenario, one round, 50 mixed users,
    /// 50,000 seeded users. Explicit options below win.
    #[arg(long)]
    quick: bool,
    /// Measured seconds per scenario [default: 3].
    #[arg(long)]
    duration: Option<f64>,
    /// Unmeasured warm-up seconds before each scenario [default: 0.5].
    #[arg(long)]
    warmup: Option<f64>,
    /// Rounds of the paired comparisons (Latchkey and the ceiling at EdDSA, seeded and
    /// empty store), alternating; the round of median ratio is reported [default: 3].
    /// The ES256 comparison with the ceiling, which no target depends on, runs once.
    #[arg(long)]
    rounds: Option<usize>,
    /// Users registered up front for the mixed scenario [default: 100].
    #[arg(long)]
    users: Option<usize>,
    /// Users (each with a session) seeded into a store for the refresh rerun; 0 skips it
    /// [default: 1000000].
    #[arg(long)]
    seed_users: Option<u64>,
    /// Skip the Express peer.
    #[arg(long)]
    no_peer: bool,
    /// Do not pin (for machines with one core; the numbers are then not comparable).
    #[arg(long)]
    no_pin: bool,
    /// The Latchkey binary [default: `latchkey` next to this binary].
    #[arg(long)]
    latchkey_bin: Option<PathBuf>,
    /// The peer's sources [default: `shared/bench/peer-node` beside the repository].
    #[arg(long, env = "LATCHKEY_BENCH_PEER_DIR")]
    peer_dir: Option<PathBuf>,
    /// Also write the report to this file.
    #[arg(long)]
    out: Option<PathBuf>,
    #[command(flatten)]
    groups: groups::GroupOptions,
}

struct Settings {
    timing: Timing,
    rounds: usize,
    users: usize,
    seed_users: u64,
    peer_dir: Option<PathBuf>,
    /// The main group: Latchkey, the Express peer, the ceiling, the seeded store.
    main: bool,
    /// The better-auth peer's sources, unless that group is skipped.
    better_auth: Option<PathBuf>,
    /// The opt-in groups (10M sessions, diversity, PostgreSQL, start-up, replicas).
    extra: groups::Extra,
    latchkey_bin: PathBuf,
    self_bin: PathBuf,
    server_core: Option<usize>,
}

/// Run everything and print the report.
pub(crate) fn run(options: AllOptions) -> Result<()> {
    let started = Instant::now();
    let self_bin = std::env::current_exe()?;
    let latchkey_bin = match &options.latchkey_bin {
        Some(path) => path.clone(),
        None => self_bin.with_file_name("latchkey"),
    };
    if !latchkey_bin.exists() {
        bail!(
            "no Latchkey binary at {} (run `cargo build --release -p latchkey`, or bench/run)",
            latchkey_bin.display()
        );
    }
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    let pin = !options.no_pin;
    if pin {
        if cores < 2 {
            bail!("pinning needs two cores, this process may use {cores}; pass --no-pin");
        }
        pin_self(LOAD_CORE)?;
    }
    let peer_dir = if options.no_peer {
        None
    } else {
        let dir = options.peer_dir.clone().unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/bench/peer-node")
        });
        if dir.join("server.js").exists() {
            Some(dir)
        } else {
            eprintln!(
                "note: no peer at {} (set --peer-dir); skipping the peer",
                dir.display()
            );
            None
        }
    };
    let quick = options.quick;
    let settings = Settings {
        timing: Timing {
            warmup: Duration::from_secs_f64(options.warmup.unwrap_or(0.5)),
            duration: Duration::from_secs_f64(options.duration.unwrap_or(if quick {
                2.0
            } else {
                3.0
            })),
        },
        rounds: options.rounds.unwrap_or(if quick { 1 } else { 3 }),
        users: options.users.unwrap_or(if quick { 50 } else { 100 }).max(1),
        // Only the main group seeds 1M users and runs the Express peer.
        seed_users: if options.groups.main() {
            options
                .seed_users
                .unwrap_or(if quick { 50_000 } else { 1_000_000 })
        } else {
            0
        },
        peer_dir: peer_dir.filter(|_| options.groups.main()),
        main: options.groups.main(),
        better_auth: options
            .groups
            .better_auth()
            .then(|| options.groups.better_auth.source())
            .flatten(),
        extra: options.groups.extra(),
        latchkey_bin,
        self_bin,
        server_core: pin.then_some(SERVER_CORE),
    };
    let runtime = crate::current_thread_runtime()?;
    let (rows, mut facts) = runtime.block_on(run_all(&settings))?;
    facts.header.push(format!(
        "Run took {:.0} s; load average at the end: {}.",
        started.elapsed().as_secs_f64(),
        load_average()
    ));
    let report = report::render(&rows, &facts);
    println!("{report}");
    if let Some(out) = &options.out {
        std::fs::write(out, &report).with_context(|| format!("writing {}", out.display()))?;
    }
    Ok(())
}

/// Median time of an Argon2id (OWASP) verification on this thread's core, ms.
pub(crate) fn argon2_ms() -> Result<f64> {
    let hasher = PasswordHasher::new(HashCost::OWASP)?;
    let mut memory = hasher.new_memory();
    let hash = hasher.hash(&Password::parse(PASSWORD.to_owned())?, &mut memory)?;
    let mut times: Vec<f64> = (0..5)
        .map(|_| {
            let start = Instant::now();
            let ok = hasher.verify(PASSWORD.as_bytes(), Some(&hash), &mut memory);
            (start.elapsed().as_secs_f64() * 1000.0, ok)
        })
        .map(|(ms, _)| ms)
        .collect();
    times.sort_by(f64::total_cmp);
    Ok(times[times.len() / 2])
}

/// Remove every `LATCHKEY_*` variable inherited from the caller's environment.
fn clean_env(command: &mut Command) {
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("LATCHKEY_") {
            command.env_remove(name);
        }
    }
}

/// Start Latchkey on the database in `dir`, with `extra` settings on top of the
/// benchmark's; its log goes to `dir/<log>`.
async fn start_latchkey(
    settings: &Settings,
    name: &str,
    alg: &str,
    dir: &Path,
    extra: &[(&str, &str)],
    log: &str,
) -> Result<ServerProcess> {
    let (command, addr) = latchkey_command(settings, alg, dir, extra)?;
    ServerProcess::start(name, command, addr, dir.join(log)).await
}

/// The command that starts Latchkey as [`start_latchkey`] does, and its address.
fn latchkey_command(
    settings: &Settings,
    alg: &str,
    dir: &Path,
    extra: &[(&str, &str)],
) -> Result<(Command, std::net::SocketAddr)> {
    std::fs::create_dir_all(dir)?;
    let addr = free_addr()?;
    let mut command = pinned(settings.server_core, &settings.latchkey_bin, &[]);
    clean_env(&mut command);
    let generous = "1000000/1s";
    command
        .current_dir(dir)
        .env("LATCHKEY_BIND", addr.to_string())
        .env(
            "LATCHKEY_DATABASE_URL",
            format!("sqlite://{}", dir.join("latchkey.db").display()),
        )
        .env("LATCHKEY_ALGORITHM", alg)
        .env("LATCHKEY_ISSUER", ISSUER)
        .env("LATCHKEY_AUDIENCE", AUDIENCE)
        .env("LATCHKEY_COOKIE_SECURE", "false")
        .env("LATCHKEY_RATE_REGISTER_PER_IP", generous)
        .env("LATCHKEY_RATE_LOGIN_PER_IP", generous)
        .env("LATCHKEY_RATE_REFRESH_PER_IP", generous)
        .env("LATCHKEY_RATE_REFRESH_PER_ACCOUNT", generous)
        .envs(extra.iter().copied());
    Ok((command, addr))
}

async fn start_ceiling(
    settings: &Settings,
    alg: &str,
    jwks: &Path,
    log: PathBuf,
) -> Result<ServerProcess> {
    let addr = free_addr()?;
    let bind = addr.to_string();
    let jwks = jwks.display().to_string();
    let command = pinned(
        settings.server_core,
        &settings.self_bin,
        &[
            "ceiling",
            "--bind",
            &bind,
            "--jwks-file",
            &jwks,
            "--issuer",
            ISSUER,
            "--audience",
            AUDIENCE,
        ],
    );
    ServerProcess::start(format!("ceiling {alg}"), command, addr, log).await
}

/// Copy the peer's sources (not `node_modules`) to `dir` and `npm ci` there.
fn prepare_peer(source: &Path, dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir)?;
    for entry in std::fs::read_dir(source)? {
        let entry = entry?;
        if entry.file_type()?.is_file() {
            std::fs::copy(entry.path(), dir.join(entry.file_name()))?;
        }
    }
    let log = std::fs::File::create(dir.join("npm-ci.log"))?;
    let status = Command::new("npm")
        .args(["ci", "--no-audit", "--no-fund"])
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .status()
        .context("could not run npm")?;
    if !status.success() {
        bail!("npm ci failed in {} (see npm-ci.log there)", dir.display());
    }
    Ok(())
}

async fn start_peer(
    settings: &Settings,
    dir: &Path,
    alg: &str,
    keyobj: bool,
) -> Result<ServerProcess> {
    let addr = free_addr()?;
    let mut command = pinned(settings.server_core, Path::new("node"), &["server.js"]);
    command
        .current_dir(dir)
        .env("PORT", addr.port().to_string())
        .env("ALG", alg)
        .env("KEYOBJ", if keyobj { "1" } else { "0" })
        .env_remove("NODE_ENV");
    let name = format!("peer {alg} KEYOBJ={}", u8::from(keyobj));
    let log = dir.join(format!("server-{alg}-{}.log", u8::from(keyobj)));
    ServerProcess::start(name, command, addr, log).await
}

/// Collects rows, measuring the server's peak memory around each scenario.
struct Bench<'a> {
    settings: &'a Settings,
    rows: Vec<Row>,
    notes: Vec<String>,
    peak_reset_failed: bool,
    /// Clock ticks per second, for CPU shares.
    hz: f64,
}

/// A server under test with what its rows need.
struct Subject<'s> {
    server: &'s ServerProcess,
    system: System,
    alg: &'static str,
    /// Shown after the server's name, e.g. a setting that differs.
    variant: Option<&'static str>,
    rest: Option<f64>,
}

impl Subject<'_> {
    fn target(&self) -> Target {
        Target {
            addr: self.server.addr,
            api: match self.system {
                System::Latchkey => Api::Latchkey,
                System::Peer { .. } => Api::Peer,
                System::Ceiling => Api::Ceiling,
            },
        }
    }
}

/// CPU time of the server and of this load generator, sampled during a scenario.
#[derive(Debug, Default)]
struct CpuSamples {
    /// (when, server ticks, load generator ticks)
    points: Vec<(Instant, u64, u64)>,
}

impl CpuSamples {
    /// Shares of one core used by the server and by the load generator over `window`.
    fn over(&self, window: &crate::stats::Window, hz: f64) -> Cpu {
        let first = self.points.iter().find(|p| p.0 >= window.from());
        let last = self.points.iter().rev().find(|p| p.0 <= window.until());
        match (first, last) {
            (Some(a), Some(b)) if b.0 > a.0 => {
                let seconds = (b.0 - a.0).as_secs_f64() * hz;
                Cpu {
                    server: Some(b.1.saturating_sub(a.1) as f64 / seconds),
                    loadgen: Some(b.2.saturating_sub(a.2) as f64 / seconds),
                }
            }
            _ => Cpu::default(),
        }
    }
}

impl Bench<'_> {
    /// Run `scenario` (setup included) with the server's peak RSS reset before it, and
    /// the CPU time of the server and of this process sampled every 50 ms.
    async fn measure<T>(
        &mut self,
        server: &ServerProcess,
        scenario: impl Future<Output = Result<T>>,
    ) -> Result<(T, Option<f64>, CpuSamples)> {
        if !server.reset_peak() {
            self.peak_reset_failed = true;
        }
        let pid = server.pid().map(|p| p.to_string()).unwrap_or_default();
        let samples = Arc::new(std::sync::Mutex::new(CpuSamples::default()));
        let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let sampler = {
            let (samples, done) = (samples.clone(), done.clone());
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(Duration::from_millis(50));
                while !done.load(std::sync::atomic::Ordering::Relaxed) {
                    tick.tick().await;
                    if let (Some(s), Some(l)) = (cpu_ticks(&pid), cpu_ticks("self")) {
                        if let Ok(mut samples) = samples.lock() {
                            samples.points.push((Instant::now(), s, l));
                        }
                    }
                }
            })
        };
        let out = scenario.await;
        done.store(true, std::sync::atomic::Ordering::Relaxed);
        let _ = sampler.await;
        let out = out?;
        let peak = server.memory().ok().map(|m| m.peak_kib as f64 / 1024.0);
        let samples = std::mem::take(
            &mut *samples
                .lock()
                .map_err(|_| anyhow::anyhow!("sampler panicked"))?,
        );
        Ok((out, peak, samples))
    }

    /// Measure one scenario on one subject and add its row.
    async fn once(
        &mut self,
        subject: &Subject<'_>,
        scenario: Scenario,
        connections: usize,
        run: impl Future<Output = Result<Summary>>,
    ) -> Result<Summary> {
        let (summary, peak, samples) = self.measure(subject.server, run).await?;
        let cpu = samples.over(&summary.window, self.hz);
        self.push(
            subject,
            scenario,
            connections.to_string(),
            summary,
            peak,
            cpu,
        );
        Ok(summary)
    }

    /// Measure the same scenario on several subjects in alternation, `rounds` times, and
    /// add every subject's row from one round: the round of median ratio between the
    /// first subject and the last (the reference), so a reported ratio is the median of
    /// the per-round ratios (peak RSS: the highest of all rounds). With one subject, the
    /// round of median throughput. Alternating makes the comparison fair on a machine
    /// whose background load drifts.
    async fn alternate<F, Fut>(
        &mut self,
        subjects: &[(&Subject<'_>, Scenario)],
        connections: usize,
        rounds: usize,
        mut run: F,
    ) -> Result<()>
    where
        F: FnMut(Target) -> Fut,
        Fut: Future<Output = Result<Summary>>,
    {
        let rounds = rounds.max(1);
        let mut results: Vec<Vec<(Summary, Option<f64>, Cpu)>> = vec![Vec::new(); subjects.len()];
        for round in 0..rounds {
            for (i, (subject, _)) in subjects.iter().enumerate() {
                let (summary, peak, samples) =
                    self.measure(subject.server, run(subject.target())).await?;
                if rounds > 1 {
                    eprintln!("    round {} {}: {summary}", round + 1, subject.server.name);
                }
                results[i].push((summary, peak, samples.over(&summary.window, self.hz)));
            }
        }
        let reference = &results[results.len() - 1];
        let ratio = |round: usize| results[0][round].0.rate / reference[round].0.rate;
        let key = |round: usize| {
            if results.len() > 1 {
                ratio(round)
            } else {
                results[0][round].0.rate
            }
        };
        let mut order: Vec<usize> = (0..rounds).collect();
        order.sort_by(|&a, &b| key(a).total_cmp(&key(b)));
        let chosen = order[order.len() / 2];
        if rounds > 1 && results.len() > 1 {
            let ratios: Vec<String> = (0..rounds)
                .map(|round| format!("{:.0}%", ratio(round) * 100.0))
                .collect();
            eprintln!(
                "    {} / {} by round: {}; reported: round {}",
                subjects[0].0.server.name,
                subjects[subjects.len() - 1].0.server.name,
                ratios.join(", "),
                chosen + 1
            );
        }
        for ((subject, scenario), runs) in subjects.iter().zip(&results) {
            let peak = runs.iter().filter_map(|r| r.1).reduce(f64::max);
            let (summary, _, cpu) = runs[chosen];
            self.push(
                subject,
                *scenario,
                connections.to_string(),
                summary,
                peak,
                cpu,
            );
        }
        Ok(())
    }

    /// The mixed scenario on one subject: its row, and a note headed `who` with the
    /// figures by kind of request.
    async fn mixed(&mut self, subject: &Subject<'_>, users: &[Creds], who: &str) -> Result<()> {
        let run = scenarios::mixed(
            subject.target(),
            users,
            MIXED_CONNECTIONS,
            self.settings.timing,
        );
        let (mixed, peak, samples) = self.measure(subject.server, run).await?;
        let cpu = samples.over(&mixed.all.window, self.hz);
        self.push(
            subject,
            Scenario::Mixed,
            MIXED_CONNECTIONS.to_string(),
            mixed.all,
            peak,
            cpu,
        );
        self.notes.push(format!(
            "{who} mixed, by kind: protected {}; refresh {}; login {}.",
            mixed.protected, mixed.refresh, mixed.login
        ));
        Ok(())
    }

    fn push(
        &mut self,
        subject: &Subject<'_>,
        scenario: Scenario,
        connections: String,
        summary: Summary,
        peak_mib: Option<f64>,
        cpu: Cpu,
    ) {
        eprintln!(
            "    {} {}: {summary}",
            subject.server.name,
            scenario.label()
        );
        self.rows.push(Row {
            system: subject.system,
            alg: subject.alg,
            scenario,
            connections,
            summary,
            variant: subject.variant,
            rest_mib: subject.rest,
            peak_mib,
            cpu,
        });
    }
}

/// Register `count` benchmark users and log the first one in: the users and that
/// access token.
async fn register_and_log_in(target: Target, count: usize) -> Result<(Vec<Creds>, Arc<str>)> {
    let users: Vec<Creds> = (0..count).map(Creds::bench).collect();
    eprintln!("  registering {count} users");
    scenarios::register_all(target, &users, 8).await?;
    let token = scenarios::login_once(target, &users[0])
        .await?
        .access
        .into();
    Ok((users, token))
}

/// `VmRSS` of an idle, freshly started server (after half a second), MiB.
async fn rest_mib(server: &ServerProcess) -> Option<f64> {
    tokio::time::sleep(Duration::from_millis(500)).await;
    server.memory().ok().map(|m| m.rss_kib as f64 / 1024.0)
}

async fn fetch_jwks(target: Target, path: &Path) -> Result<()> {
    let response = Conn::new(target.addr)
        .get("/.well-known/jwks.json", None)
        .await?;
    if !response.ok() {
        bail!("GET /.well-known/jwks.json: {}", response.status);
    }
    std::fs::write(path, &response.body)?;
    Ok(())
}

/// Median Argon2id verification time on the server's core, measured by a child process
/// pinned there while the server idles, ms.
fn argon2_ms_on_server_core(settings: &Settings) -> Result<f64> {
    let output = pinned(settings.server_core, &settings.self_bin, &["argon2-time"])
        .stderr(Stdio::inherit())
        .output()
        .context("could not time Argon2id on the server core")?;
    if !output.status.success() {
        bail!("argon2-time failed");
    }
    String::from_utf8_lossy(&output.stdout)
        .trim()
        .parse()
        .context("argon2-time printed no number")
}

/// Latchkey with `alg`, next to the ceiling for the protected route; with `full` also
/// refresh, login, the login flood and mixed.
async fn latchkey_runs(
    bench: &mut Bench<'_>,
    facts: &mut Facts,
    tmp: &Path,
    alg: &'static str,
    full: bool,
) -> Result<()> {
    let settings = bench.settings;
    let timing = settings.timing;
    eprintln!("== Latchkey {alg} (and the ceiling)");
    let dir = tmp.join(format!("latchkey-{alg}"));
    let server = start_latchkey(
        settings,
        &format!("Latchkey {alg}"),
        alg,
        &dir,
        &[],
        "server.log",
    )
    .await?;
    let latchkey = Subject {
        server: &server,
        system: System::Latchkey,
        alg,
        variant: None,
        rest: rest_mib(&server).await,
    };
    let target = latchkey.target();
    let count = if full { settings.users } else { FEW_USERS };
    let (users, token) = register_and_log_in(target, count).await?;
    let jwks = tmp.join(format!("jwks-{alg}.json"));
    fetch_jwks(target, &jwks).await?;

    let ceiling_server =
        start_ceiling(settings, alg, &jwks, tmp.join(format!("ceiling-{alg}.log"))).await?;
    let ceiling = Subject {
        server: &ceiling_server,
        system: System::Ceiling,
        alg,
        variant: None,
        rest: rest_mib(&ceiling_server).await,
    };
    // The token must pass there too, or the ceiling would measure refusals.
    let check = Conn::new(ceiling.target().addr)
        .get("/auth/me", Some(&token))
        .await?;
    if !check.ok() {
        bail!("the ceiling refused Latchkey's token: {}", check.status);
    }
    // The same database, so the same keys, with the verified-token cache off: what the
    // protected route costs when every request verifies a signature.
    let uncached_server = start_latchkey(
        settings,
        &format!("Latchkey {alg}, cache off"),
        alg,
        &dir,
        &[("LATCHKEY_VERIFIED_TOKEN_CACHE", "0")],
        "server-cache-off.log",
    )
    .await?;
    let uncached = Subject {
        server: &uncached_server,
        system: System::Latchkey,
        alg,
        variant: Some("cache off"),
        rest: rest_mib(&uncached_server).await,
    };
    bench
        .alternate(
            &[
                (&latchkey, Scenario::Protected),
                (&uncached, Scenario::Protected),
                (&ceiling, Scenario::Protected),
            ],
            PROTECTED_CONNECTIONS,
            // The EdDSA ratio is a target; ES256's is context, measured once to save time.
            if full { settings.rounds } else { 1 },
            |t| {
                let token = token.clone();
                async move {
                    Ok(scenarios::protected(
                        t,
                        token,
                        PROTECTED_CONNECTIONS,
                        timing.for_protected(),
                    )
                    .await)
                }
            },
        )
        .await?;
    ceiling_server.stop();
    uncached_server.stop();

    bench
        .once(
            &latchkey,
            Scenario::Refresh,
            REFRESH_CLIENTS,
            scenarios::refresh_chains(target, &users, REFRESH_CLIENTS, timing),
        )
        .await?;
    if !full {
        server.stop();
        return Ok(());
    }
    // The machine's speed drifts: time the hash just before and just after the login
    // run, and take the mean as the limit that run is held to.
    let before = argon2_ms_on_server_core(settings)?;
    bench
        .once(&latchkey, Scenario::Login, LOGIN_CONNECTIONS, async {
            Ok(scenarios::logins(target, &users, LOGIN_CONNECTIONS, timing.for_logins()).await)
        })
        .await?;
    let after = argon2_ms_on_server_core(settings)?;
    facts.argon2_ms = (before + after) / 2.0;
    eprintln!(
        "  Argon2id on the server core: {before:.1} ms before the login run, {after:.1} ms after"
    );
    let (flood, peak, samples) = bench
        .measure(
            &server,
            scenarios::login_flood(
                target,
                &users,
                FLOOD_LOGIN_CONNECTIONS,
                FLOOD_REFRESH_CLIENTS,
                timing.for_logins(),
            ),
        )
        .await?;
    let conns = format!("{FLOOD_LOGIN_CONNECTIONS}+{FLOOD_REFRESH_CLIENTS}");
    let cpu = samples.over(&flood.logins.window, bench.hz);
    bench.push(
        &latchkey,
        Scenario::FloodLogins,
        conns.clone(),
        flood.logins,
        peak,
        cpu,
    );
    bench.push(
        &latchkey,
        Scenario::FloodRefresh,
        conns,
        flood.refreshes,
        peak,
        cpu,
    );
    bench
        .mixed(&latchkey, &users, &format!("Latchkey {alg}"))
        .await?;
    server.stop();
    Ok(())
}

async fn peer_runs(
    bench: &mut Bench<'_>,
    dir: &Path,
    alg: &'static str,
    keyobj: bool,
    full: bool,
) -> Result<()> {
    let settings = bench.settings;
    let timing = settings.timing;
    eprintln!("== peer {alg} KEYOBJ={}", u8::from(keyobj));
    let server = start_peer(settings, dir, alg, keyobj).await?;
    let peer = Subject {
        server: &server,
        system: System::Peer { keyobj },
        alg,
        variant: None,
        rest: rest_mib(&server).await,
    };
    let target = peer.target();
    let count = if full { settings.users } else { FEW_USERS };
    let (users, token) = register_and_log_in(target, count).await?;
    bench
        .once(&peer, Scenario::Protected, PROTECTED_CONNECTIONS, async {
            Ok(
                scenarios::protected(target, token, PROTECTED_CONNECTIONS, timing.for_protected())
                    .await,
            )
        })
        .await?;
    bench
        .once(
            &peer,
            Scenario::Refresh,
            REFRESH_CLIENTS,
            scenarios::refresh_chains(target, &users, REFRESH_CLIENTS, timing),
        )
        .await?;
    if full {
        bench
            .once(&peer, Scenario::Login, LOGIN_CONNECTIONS, async {
                Ok(scenarios::logins(target, &users, LOGIN_CONNECTIONS, timing.for_logins()).await)
            })
            .await?;
        let who = format!("peer {alg} KEYOBJ={}", u8::from(keyobj));
        bench.mixed(&peer, &users, &who).await?;
    }
    server.stop();
    Ok(())
}

/// Refresh chains on a seeded store and on an empty one, alternating.
async fn seeded_run(bench: &mut Bench<'_>, tmp: &Path) -> Result<seed::SeedReport> {
    let settings = bench.settings;
    let timing = settings.timing;
    let users = settings.seed_users;
    eprintln!("== seeding {users} users with one session each");
    let dir = tmp.join("latchkey-seeded");
    std::fs::create_dir_all(&dir)?;
    let report = seed::seed(&dir.join("latchkey.db"), users, 1_000.min(users)).await?;
    eprintln!("  {report}");
    eprintln!("== Latchkey EdDSA: seeded store and empty store, alternating");
    let seeded_server = start_latchkey(
        settings,
        "Latchkey EdDSA, seeded",
        "EdDSA",
        &dir,
        &[],
        "server.log",
    )
    .await?;
    let seeded = Subject {
        server: &seeded_server,
        system: System::Latchkey,
        alg: "EdDSA",
        variant: None,
        rest: rest_mib(&seeded_server).await,
    };
    let empty_dir = tmp.join("latchkey-empty");
    let empty_server = start_latchkey(
        settings,
        "Latchkey EdDSA, empty",
        "EdDSA",
        &empty_dir,
        &[],
        "server.log",
    )
    .await?;
    let empty = Subject {
        server: &empty_server,
        system: System::Latchkey,
        alg: "EdDSA",
        variant: None,
        rest: rest_mib(&empty_server).await,
    };
    // Chains spread over the whole seeded store; the same accounts registered on the
    // empty one.
    let step = (users / REFRESH_CLIENTS as u64).max(1);
    let chain_users: Vec<Creds> = (0..REFRESH_CLIENTS as u64)
        .map(|i| Creds::seeded((i * step).min(users - 1)))
        .collect();
    scenarios::register_all(empty.target(), &chain_users, 8).await?;
    bench
        .alternate(
            &[
                (&empty, Scenario::RefreshEmptyPaired),
                (&seeded, Scenario::RefreshSeeded),
            ],
            REFRESH_CLIENTS,
            settings.rounds,
            |t| {
                let chain_users = chain_users.clone();
                async move {
                    scenarios::refresh_chains(t, &chain_users, REFRESH_CLIENTS, timing).await
                }
            },
        )
        .await?;
    seeded_server.stop();
    empty_server.stop();
    Ok(report)
}

async fn run_all(settings: &Settings) -> Result<(Vec<Row>, Facts)> {
    let tmp = tempfile::Builder::new()
        .prefix("latchkey-bench-")
        .tempdir()?;
    let tmp_path = tmp.path().to_path_buf();
    let mut facts = Facts {
        header: vec![
            machine(),
            format!(
                "Each server pinned to core {SERVER_CORE} (`taskset -c {SERVER_CORE}`), this load generator to core {LOAD_CORE}; \
                 {:.1} s measured after {:.1} s warm-up per scenario (protected {:.1} s, login and login flood {:.1} s); \
                 closed loop, keep-alive.",
                settings.timing.duration.as_secs_f64(),
                settings.timing.warmup.as_secs_f64(),
                settings.timing.for_protected().duration.as_secs_f64(),
                settings.timing.for_logins().duration.as_secs_f64()
            ),
            format!("Load average at the start: {}.", load_average()),
        ],
        argon2_ms: 0.0,
        seed: None,
        notes: Vec::new(),
        sections: Vec::new(),
    };
    if settings.server_core.is_none() {
        facts
            .header
            .push("NOT PINNED (--no-pin): server and load generator share the cores.".to_owned());
    }
    let mut bench = Bench {
        settings,
        rows: Vec::new(),
        notes: Vec::new(),
        peak_reset_failed: false,
        hz: clock_ticks_per_second(),
    };

    if settings.main {
        latchkey_runs(&mut bench, &mut facts, &tmp_path, "EdDSA", true).await?;
        latchkey_runs(&mut bench, &mut facts, &tmp_path, "ES256", false).await?;
    }

    if let Some(source) = &settings.peer_dir {
        let dir = tmp_path.join("peer-node");
        eprintln!("== npm ci (copy of {})", source.display());
        match prepare_peer(source, &dir) {
            Ok(()) => {
                for (alg, keyobj) in [
                    ("ES256", false),
                    ("ES256", true),
                    ("HS256", false),
                    ("HS256", true),
                ] {
                    let full = alg == "ES256" && keyobj;
                    peer_runs(&mut bench, &dir, alg, keyobj, full).await?;
                }
            }
            Err(e) => {
                eprintln!("note: skipping the peer: {e:#}");
                facts.notes.push(format!("The peer was skipped: {e:#}."));
            }
        }
    } else {
        facts
            .notes
            .push("The peer was skipped (--no-peer or no sources).".to_owned());
    }

    if let Some(source) = &settings.better_auth {
        facts
            .sections
            .push(better_auth::run(&mut bench, &tmp_path, source).await?);
    }

    if settings.seed_users > 0 {
        facts.seed = Some(seeded_run(&mut bench, &tmp_path).await?);
    }

    groups::run_extra(&mut bench, &tmp_path, &mut facts.sections).await?;

    facts.notes.push(format!(
        "Latchkey ran with its defaults except: SQLite in a temporary directory (synchronous=FULL, WAL), \
         rate limits raised to 1000000/1s, LATCHKEY_COOKIE_SECURE=false. Argon2id (m=19456, t=2, p=1) \
         verification on the server's core (idle server; mean of the medians timed just before and just after \
         the login run): {:.1} ms, so one core logs in at most ~{:.0}/s.",
        facts.argon2_ms,
        1000.0 / facts.argon2_ms
    ));
    facts.notes.append(&mut bench.notes);
    if let Some(seed) = &facts.seed {
        facts.notes.push(format!("Seeding: {seed}."));
    }
    facts.notes.push(
        "RSS rest = VmRSS after start-up before any request; RSS peak = VmHWM during the scenario \
         (reset through /proc/<pid>/clear_refs before each; setup logins included). \
         Latchkey/peer compares with the best peer run of the same scenario and algorithm \
         (for EdDSA, which the peer lacks, any algorithm). Errors = non-2xx answers and transport errors."
            .to_owned(),
    );
    if bench.peak_reset_failed {
        facts.notes.push(
            "The kernel refused to reset VmHWM: peaks cover the whole process life.".to_owned(),
        );
    }
    drop(tmp);
    Ok((bench.rows, facts))
}
