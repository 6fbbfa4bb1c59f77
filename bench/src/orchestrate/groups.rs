//! The groups of `all` beyond the main one, how to pick them, and running the opt-in
//! ones.

use std::path::Path;

use anyhow::Result;
use clap::ValueEnum;

use super::better_auth::BetterAuthOptions;
use super::Bench;

/// A group that `--only` can pick.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Group {
    /// Latchkey side by side with better-auth (`bench/peers/better-auth`).
    BetterAuth,
    /// 10,000,000 seeded sessions against an empty store.
    #[value(name = "sessions-10m")]
    Sessions10m,
    /// The protected route with 100,000 distinct tokens, uniform and Zipf, vs the ceiling.
    Diversity,
    /// Refresh, login and mixed on PostgreSQL, with PostgreSQL's CPU.
    Postgres,
    /// Start-up time on a 1M-session store; SIGTERM during refresh chains.
    Startup,
    /// Two replicas on one PostgreSQL and one Redis: aggregate refresh rate and
    /// cross-replica revocation delay.
    Replicas,
}

/// Options of `all` that pick groups.
#[derive(Debug, clap::Args)]
pub(crate) struct GroupOptions {
    /// Run only these groups (comma-separated), not the main one (Latchkey, the Express
    /// peer, the ceiling, the 1M seeded store).
    #[arg(long, value_enum, value_delimiter = ',')]
    pub(crate) only: Vec<Group>,
    /// Also seed a store with 10,000,000 users, each with a session, and compare refresh
    /// and login on it with an empty store (about 5 minutes more, 5.6 GB of disk).
    #[arg(long)]
    pub(crate) sessions_10m: bool,
    /// How many users the 10M-session group seeds (a smaller store for a smoke test).
    #[arg(long, default_value_t = super::sessions::USERS, hide = true)]
    pub(crate) sessions_10m_users: u64,
    /// Also run the token-diversity group (100,000 tokens; about 2 minutes more).
    #[arg(long)]
    pub(crate) diversity: bool,
    /// How many distinct tokens the diversity group uses (smaller for a smoke test).
    #[arg(long, default_value_t = super::diversity::TOKENS, hide = true)]
    pub(crate) diversity_tokens: usize,
    /// Also run the PostgreSQL group (a database created and dropped on the server of
    /// --postgres-url; about 2 minutes more).
    #[arg(long)]
    pub(crate) postgres: bool,
    /// The PostgreSQL server for the PostgreSQL and two-replica groups, as a URL without
    /// a database name (each group creates a database there and drops it at the end).
    #[arg(long, default_value = "postgres://postgres@127.0.0.1:5432")]
    pub(crate) postgres_url: String,
    /// Also run the start-up and shutdown group (seeds 1M users; about 1 minute more).
    #[arg(long)]
    pub(crate) startup: bool,
    /// Also run the two-replica group (a database on the server of --postgres-url, the
    /// Redis of --redis-url; about 1.5 minutes more).
    #[arg(long)]
    pub(crate) replicas: bool,
    /// The Redis the replicas share (the two-replica group).
    #[arg(long, default_value = "redis://127.0.0.1:6379")]
    pub(crate) redis_url: String,
    #[command(flatten)]
    pub(crate) better_auth: BetterAuthOptions,
}

/// The opt-in groups that run, with what they need.
#[derive(Debug, Default)]
pub(crate) struct Extra {
    sessions_10m: Option<u64>,
    diversity: Option<usize>,
    postgres: Option<String>,
    startup: bool,
    /// The PostgreSQL server and the Redis of the two-replica group.
    replicas: Option<(String, String)>,
}

impl GroupOptions {
    /// Whether the main group runs.
    pub(crate) fn main(&self) -> bool {
        self.only.is_empty()
    }

    /// Whether the better-auth group runs (if its sources are there).
    pub(crate) fn better_auth(&self) -> bool {
        !self.better_auth.no_better_auth
            && (self.only.is_empty() || self.only.contains(&Group::BetterAuth))
    }

    fn picked(&self, flag: bool, group: Group) -> bool {
        flag || self.only.contains(&group)
    }

    /// The opt-in groups picked by their flags or by `--only`.
    pub(crate) fn extra(&self) -> Extra {
        Extra {
            sessions_10m: self
                .picked(self.sessions_10m, Group::Sessions10m)
                .then_some(self.sessions_10m_users),
            diversity: self
                .picked(self.diversity, Group::Diversity)
                .then_some(self.diversity_tokens),
            postgres: self
                .picked(self.postgres, Group::Postgres)
                .then(|| self.postgres_url.clone()),
            startup: self.picked(self.startup, Group::Startup),
            replicas: self
                .picked(self.replicas, Group::Replicas)
                .then(|| (self.postgres_url.clone(), self.redis_url.clone())),
        }
    }
}

/// Run the opt-in groups; each adds a Markdown section.
pub(super) async fn run_extra(
    bench: &mut Bench<'_>,
    tmp: &Path,
    sections: &mut Vec<String>,
) -> Result<()> {
    let extra = &bench.settings.extra;
    let (diversity, postgres, startup, sessions_10m, replicas) = (
        extra.diversity,
        extra.postgres.clone(),
        extra.startup,
        extra.sessions_10m,
        extra.replicas.clone(),
    );
    if let Some(tokens) = diversity {
        sections.push(super::diversity::run(bench, tmp, tokens).await?);
    }
    if let Some(url) = postgres {
        sections.push(super::postgres::run(bench, tmp, &url).await?);
    }
    if let Some((pg, redis)) = replicas {
        sections.push(super::replicas::run(bench, tmp, &pg, &redis).await?);
    }
    if startup {
        sections.push(super::startup::run(bench, tmp).await?);
    }
    if let Some(users) = sessions_10m {
        sections.push(super::sessions::run(bench, tmp, users).await?);
    }
    Ok(())
}
