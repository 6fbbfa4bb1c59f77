//! `latchkey sessions …`: a user's live sessions, and revoking one or all of them. A
//! revoked session's refresh token stops at once; its access tokens are refused by
//! running servers as soon as they read the revocation log (`LATCHKEY_REVOCATION_POLL`).

use anyhow::bail;
use clap::{ArgGroup, Subcommand};
use latchkey::service::{AuthService, SessionView};
use serde::Serialize;

use super::output::{auth_error, or_dash, print_json, Table};
use super::users::find;
use super::{admin_context, Output};

/// `latchkey sessions …`.
#[derive(Debug, Subcommand)]
pub(crate) enum SessionsCommand {
    /// List a user's live sessions, newest first.
    List {
        /// The user's e-mail address.
        #[arg(long)]
        user: String,
    },
    /// Revoke one of a user's sessions (--session ID) or all of them (--all).
    #[command(group(ArgGroup::new("which").required(true).args(["session", "all"])))]
    Revoke {
        /// The user's e-mail address.
        #[arg(long)]
        user: String,
        /// The session to revoke (an id from `sessions list`).
        #[arg(long)]
        session: Option<String>,
        /// Revoke every session of the user.
        #[arg(long)]
        all: bool,
    },
}

impl SessionsCommand {
    /// Run it.
    pub(crate) async fn run(self, service: &AuthService, output: Output) -> anyhow::Result<()> {
        match self {
            Self::List { user } => list(service, &user, output).await,
            Self::Revoke { user, session, all } => {
                if session.is_none() && !all {
                    bail!("name a session with --session ID, or revoke all with --all");
                }
                let found = find(service, &user).await?;
                let revoked = service
                    .revoke_sessions_of_user(
                        &found.id.to_string(),
                        session.as_deref(),
                        &admin_context(),
                    )
                    .await
                    .map_err(auth_error)?;
                if output.json {
                    #[derive(Serialize)]
                    struct Revoked {
                        revoked: usize,
                    }
                    return print_json(&Revoked { revoked });
                }
                let plural = if revoked == 1 { "" } else { "s" };
                println!("revoked {revoked} session{plural} of {}", found.email);
                Ok(())
            }
        }
    }
}

async fn list(service: &AuthService, email: &str, output: Output) -> anyhow::Result<()> {
    let user = find(service, email).await?;
    let sessions = service
        .sessions_of_user(&user.id.to_string())
        .await
        .map_err(auth_error)?;
    if output.json {
        #[derive(Serialize)]
        struct Sessions {
            sessions: Vec<SessionView>,
        }
        return print_json(&Sessions { sessions });
    }
    let mut table = Table::new(&["ID", "CREATED", "LAST USED", "IP", "DEVICE"]);
    for session in sessions {
        table.row(vec![
            session.id.to_string(),
            session.created_at,
            session.last_used_at,
            or_dash(session.ip.as_deref()),
            session.device,
        ]);
    }
    table.print();
    Ok(())
}
