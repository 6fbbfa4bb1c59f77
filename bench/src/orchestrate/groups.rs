//! The groups of `all` beyond the main one, and how to pick them.

use clap::ValueEnum;

use super::better_auth::BetterAuthOptions;

/// A group that `--only` can pick.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Group {
    /// Latchkey side by side with better-auth (`bench/peers/better-auth`).
    BetterAuth,
    /// 10,000,000 seeded sessions against an empty store.
    #[value(name = "sessions-10m")]
    Sessions10m,
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
    #[command(flatten)]
    pub(crate) better_auth: BetterAuthOptions,
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

    /// Whether the 10M-session group runs.
    pub(crate) fn sessions_10m(&self) -> bool {
        self.sessions_10m || self.only.contains(&Group::Sessions10m)
    }
}
