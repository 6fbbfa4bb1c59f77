//! `latchkey-bench`: Latchkey's load benchmark and store seeding tool.
//!
//! - `all` (what `bench/run` calls): one run, one server after another, each pinned to
//!   core 0 while this load generator runs on core 1: Latchkey (release build, SQLite in
//!   a temporary directory), the Express peer (`shared/bench/peer-node`, KEYOBJ=0 and 1)
//!   and a ceiling server (a bare axum handler that only verifies the same JWT). Prints a
//!   Markdown table and the targets, met or not.
//! - `ceiling`: the ceiling server itself (`all` starts it as a child process).
//! - `seed`: fill a Latchkey SQLite store with N users, each with a session.
//! - `load`: one scenario against a server that is already running (for profiling).
//! - `revocations`: PostgreSQL's session revocation rate (`bench/scale/pg-costs`).
//!
//! Why its own load generator: closed-loop workers on keep-alive connections, each
//! following its own refresh chain (presenting the token it just received), which
//! generic HTTP load tools cannot do.

mod api;
mod ceiling;
mod client;
mod orchestrate;
mod peers;
mod report;
mod revocations;
mod scenarios;
mod seed;
mod servers;
mod stats;
mod traffic;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand, ValueEnum};

use crate::api::{Api, Creds};
use crate::scenarios::{Target, Timing};

/// Latchkey's load benchmark and store seeding tool.
#[derive(Debug, Parser)]
#[command(about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run every scenario against Latchkey, the Express peer and the ceiling server,
    /// one after another, and print the table.
    All(orchestrate::AllOptions),
    /// Serve `GET /auth/me` verifying the bearer JWT and nothing else (the ceiling).
    Ceiling(ceiling::CeilingOptions),
    /// Fill a Latchkey SQLite store with users and sessions.
    Seed(SeedOptions),
    /// Run one scenario against a server that is already running.
    Load(LoadOptions),
    /// PostgreSQL only: session revocations per second through the store (the revocation
    /// log's advisory lock) and without that lock (bench/scale/pg-costs runs it).
    Revocations(revocations::RevocationOptions),
    /// Print the median Argon2id (OWASP) verification time on this core, ms.
    #[command(hide = true)]
    Argon2Time,
}

#[derive(Debug, clap::Args)]
struct SeedOptions {
    /// The store, e.g. `sqlite:///tmp/latchkey.db` (created and migrated if missing).
    #[arg(long)]
    database_url: String,
    /// How many users, each with one session and its first refresh token.
    #[arg(long, default_value_t = 1_000_000)]
    users: u64,
    /// How many of them to insert through the store traits (timed, to compare with the
    /// bulk SQL path that inserts the rest).
    #[arg(long, default_value_t = 1_000)]
    via_store: u64,
}

/// A scenario of the `load` subcommand.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum LoadScenario {
    Protected,
    Refresh,
    Login,
    /// `--connections` logins while 8 refresh chains run.
    Flood,
    Mixed,
}

#[derive(Debug, clap::Args)]
struct LoadOptions {
    /// The server's address.
    #[arg(long, default_value = "127.0.0.1:8080")]
    addr: SocketAddr,
    /// Which API the server speaks.
    #[arg(long, value_enum, default_value = "latchkey")]
    api: Api,
    /// The scenario.
    #[arg(long, value_enum)]
    scenario: LoadScenario,
    /// Connections (clients).
    #[arg(long, default_value_t = 32)]
    connections: usize,
    /// Users to register first (already registered ones are fine).
    #[arg(long, default_value_t = 8)]
    users: usize,
    /// Measured seconds.
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    /// Unmeasured seconds first.
    #[arg(long, default_value_t = 1.0)]
    warmup: f64,
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::All(options) => orchestrate::run(options),
        Command::Ceiling(options) => ceiling::run(&options),
        Command::Seed(options) => {
            let runtime = current_thread_runtime()?;
            let path = seed_path(&options.database_url)?;
            let report = runtime.block_on(seed::seed(&path, options.users, options.via_store))?;
            println!("{report}");
            Ok(())
        }
        Command::Load(options) => load(&options),
        Command::Revocations(options) => {
            current_thread_runtime()?.block_on(revocations::run(&options))
        }
        Command::Argon2Time => {
            println!("{:.2}", orchestrate::argon2_ms()?);
            Ok(())
        }
    }
}

/// The file named by a `sqlite://` URL.
fn seed_path(url: &str) -> Result<PathBuf> {
    let Some(path) = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
    else {
        bail!("seeding writes SQLite files only: expected a sqlite:// URL");
    };
    let path = path.split('?').next().unwrap_or(path);
    Ok(PathBuf::from(path))
}

/// The load generator's runtime: one thread, as it owns one core.
pub(crate) fn current_thread_runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("could not start the tokio runtime")
}

fn load(options: &LoadOptions) -> Result<()> {
    let runtime = current_thread_runtime()?;
    let target = Target {
        addr: options.addr,
        api: options.api,
    };
    let timing = Timing {
        warmup: Duration::from_secs_f64(options.warmup),
        duration: Duration::from_secs_f64(options.duration),
    };
    runtime.block_on(async {
        let users: Vec<Creds> = (0..options.users).map(Creds::bench).collect();
        scenarios::register_all(target, &users, 8).await?;
        let summary = match options.scenario {
            LoadScenario::Protected => {
                let first = users.first().context("--users must be at least 1")?;
                let token = scenarios::login_once(target, first).await?.access;
                scenarios::protected(target, token.into(), options.connections, timing).await
            }
            LoadScenario::Refresh => {
                scenarios::refresh_chains(target, &users, options.connections, timing).await?
            }
            LoadScenario::Login => {
                scenarios::logins(target, &users, options.connections, timing).await
            }
            LoadScenario::Flood => {
                let flood =
                    scenarios::login_flood(target, &users, options.connections, 8, timing).await?;
                println!("logins: {}", flood.logins);
                println!("refreshes: {}", flood.refreshes);
                return Ok(());
            }
            LoadScenario::Mixed => {
                scenarios::mixed(target, &users, options.connections, timing)
                    .await?
                    .all
            }
        };
        println!("{summary}");
        Ok(())
    })
}
