//! `latchkey user …`: list, show, add, change roles, disable, enable, delete. Every
//! change goes through the same service methods as the admin HTTP routes, so the same
//! rules hold (the last enabled admin cannot be disabled, demoted or deleted; removing a
//! role or disabling revokes the user's sessions at once).

use std::collections::BTreeSet;
use std::io::BufRead;

use anyhow::{bail, Context};
use clap::Subcommand;
use latchkey::service::{AuthService, SessionView, UserView};
use latchkey_core::accounts::AccessChange;
use latchkey_core::model::{Email, Password, Role};
use serde::Serialize;

use super::output::{auth_error, or_dash, print_json, yes_no, Table};
use super::{admin_context, Output};

/// `latchkey user …`.
#[derive(Debug, Subcommand)]
pub(crate) enum UserCommand {
    /// List every user, ordered by e-mail address.
    List,
    /// Show one user and their live sessions.
    Show {
        /// The user's e-mail address.
        email: String,
    },
    /// Create a user. The password is read from standard input (one line). Creates and
    /// migrates the database if it does not exist yet.
    Add {
        /// The user's e-mail address.
        #[arg(long)]
        email: String,
        #[command(flatten)]
        roles: RoleArgs,
    },
    /// Replace a user's roles. Removing a role revokes their sessions at once; an added
    /// role takes effect at their next refresh.
    SetRole {
        /// The user's e-mail address.
        email: String,
        #[command(flatten)]
        roles: RoleArgs,
    },
    /// Disable a user: their sessions are revoked at once and they cannot log in.
    Disable {
        /// The user's e-mail address.
        email: String,
    },
    /// Enable a disabled user.
    Enable {
        /// The user's e-mail address.
        email: String,
    },
    /// Delete a user, their sessions and tokens. Security events keep the user id only.
    Delete {
        /// The user's e-mail address.
        email: String,
    },
    /// Turn a user's second factor off (a lost authenticator and lost recovery codes).
    ResetMfa {
        /// The user's e-mail address.
        email: String,
    },
}

/// `--role` (repeatable) and `--new-role`.
#[derive(Debug, clap::Args)]
pub(crate) struct RoleArgs {
    /// A role; repeat for several. Must be `user`, `admin` or a role some user has
    /// already, unless --new-role is given. Default for `add`: user.
    #[arg(long = "role")]
    roles: Vec<String>,
    /// Allow role names no user has yet (without it, a typo such as `admni` is refused).
    #[arg(long)]
    new_role: bool,
}

impl UserCommand {
    /// Whether the command may create and migrate the database.
    pub(crate) fn creates_database(&self) -> bool {
        matches!(self, Self::Add { .. })
    }

    /// Run it.
    pub(crate) async fn run(self, service: &AuthService, output: Output) -> anyhow::Result<()> {
        match self {
            Self::List => list(service, output).await,
            Self::Show { email } => show(service, &email, output).await,
            Self::Add { email, roles } => add(service, &email, roles, output).await,
            Self::SetRole { email, roles } => {
                if roles.roles.is_empty() {
                    bail!("name at least one --role");
                }
                let roles = checked_roles(service, &roles).await?;
                let roles_change = AccessChange {
                    roles: Some(roles),
                    disabled: None,
                };
                let user = change(service, &email, roles_change).await?;
                report(
                    &user,
                    &format!("roles of {}: {}", user.email, user.roles.join(", ")),
                    output,
                )
            }
            Self::Disable { email } => {
                let user = change(service, &email, disable(true)).await?;
                report(
                    &user,
                    &format!("disabled {}; their sessions are revoked", user.email),
                    output,
                )
            }
            Self::Enable { email } => {
                let user = change(service, &email, disable(false)).await?;
                report(&user, &format!("enabled {}", user.email), output)
            }
            Self::Delete { email } => {
                let user = find(service, &email).await?;
                service
                    .delete_user(&user.id.to_string(), &admin_context())
                    .await
                    .map_err(auth_error)?;
                report(&user, &format!("deleted {}", user.email), output)
            }
            Self::ResetMfa { email } => {
                let user = find(service, &email).await?;
                service
                    .reset_mfa_by_email(&email, &admin_context())
                    .await
                    .map_err(auth_error)?;
                report(
                    &user,
                    &format!("second factor of {} turned off", user.email),
                    output,
                )
            }
        }
    }
}

fn disable(disabled: bool) -> AccessChange {
    AccessChange {
        roles: None,
        disabled: Some(disabled),
    }
}

/// The user with this address, or a failure naming it.
pub(crate) async fn find(service: &AuthService, email: &str) -> anyhow::Result<UserView> {
    service.user_by_email(email).await.map_err(|e| match e {
        latchkey::service::AuthError::UserNotFound => {
            anyhow::anyhow!("no user with e-mail address {email} [user_not_found]")
        }
        other => auth_error(other),
    })
}

async fn change(
    service: &AuthService,
    email: &str,
    change: AccessChange,
) -> anyhow::Result<UserView> {
    let user = find(service, email).await?;
    service
        .change_user(&user.id.to_string(), change, &admin_context())
        .await
        .map_err(auth_error)
}

fn report(user: &UserView, line: &str, output: Output) -> anyhow::Result<()> {
    if output.json {
        print_json(user)
    } else {
        println!("{line}");
        Ok(())
    }
}

/// Every user, page by page.
async fn all_users(service: &AuthService) -> anyhow::Result<Vec<UserView>> {
    let mut users = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let page = service
            .list_users(after.as_deref(), 500)
            .await
            .map_err(auth_error)?;
        users.extend(page.users);
        match page.next {
            Some(next) => after = Some(next),
            None => return Ok(users),
        }
    }
}

async fn list(service: &AuthService, output: Output) -> anyhow::Result<()> {
    let users = all_users(service).await?;
    if output.json {
        #[derive(Serialize)]
        struct Users {
            users: Vec<UserView>,
        }
        return print_json(&Users { users });
    }
    let mut table = Table::new(&["EMAIL", "ROLES", "DISABLED", "CREATED", "ID"]);
    for user in users {
        table.row(vec![
            user.email.to_string(),
            user.roles.join(","),
            yes_no(user.disabled),
            user.created_at,
            user.id.to_string(),
        ]);
    }
    table.print();
    Ok(())
}

async fn show(service: &AuthService, email: &str, output: Output) -> anyhow::Result<()> {
    let user = find(service, email).await?;
    let sessions = service
        .sessions_of_user(&user.id.to_string())
        .await
        .map_err(auth_error)?;
    if output.json {
        #[derive(Serialize)]
        struct Shown {
            user: UserView,
            sessions: Vec<SessionView>,
        }
        return print_json(&Shown { user, sessions });
    }
    let mut table = Table::new(&["FIELD", "VALUE"]);
    table.row(vec!["id".into(), user.id.to_string()]);
    table.row(vec!["email".into(), user.email.to_string()]);
    table.row(vec!["roles".into(), user.roles.join(",")]);
    table.row(vec!["created_at".into(), user.created_at.clone()]);
    table.row(vec!["disabled".into(), yes_no(user.disabled)]);
    table.row(vec![
        "disabled_at".into(),
        or_dash(user.disabled_at.as_deref()),
    ]);
    table.row(vec!["sessions".into(), format!("{} live", sessions.len())]);
    table.print();
    Ok(())
}

async fn add(
    service: &AuthService,
    email: &str,
    roles: RoleArgs,
    output: Output,
) -> anyhow::Result<()> {
    let email = Email::parse(email).map_err(|e| auth_error(e.into()))?;
    let roles = if roles.roles.is_empty() {
        vec![Role::user()]
    } else {
        checked_roles(service, &roles).await?
    };
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .context("could not read the password from standard input")?;
    // The same password rules as registration over HTTP.
    let password = Password::parse(line.trim_end_matches(['\r', '\n']).to_owned())
        .map_err(|e| auth_error(e.into()))?;
    let user = service
        .create_user(email, password, roles, &admin_context())
        .await
        .map_err(auth_error)?;
    let view = UserView::from(&user);
    report(
        &view,
        &format!("created user {} <{}>", view.id, view.email),
        output,
    )
}

/// The roles asked for, each a valid name and, unless `--new-role`, known already:
/// `user`, `admin`, or a role some user has.
async fn checked_roles(service: &AuthService, args: &RoleArgs) -> anyhow::Result<Vec<Role>> {
    let roles = args
        .roles
        .iter()
        .map(|r| Role::parse(r).map_err(|e| auth_error(e.into())))
        .collect::<anyhow::Result<Vec<_>>>()?;
    if args.new_role {
        return Ok(roles);
    }
    let mut known: BTreeSet<String> = [Role::user(), Role::admin()]
        .iter()
        .map(|r| r.as_str().to_owned())
        .collect();
    for user in all_users(service).await? {
        known.extend(user.roles);
    }
    let unknown: Vec<&str> = roles
        .iter()
        .map(Role::as_str)
        .filter(|r| !known.contains(*r))
        .collect();
    if !unknown.is_empty() {
        let known: Vec<&str> = known.iter().map(String::as_str).collect();
        bail!(
            "unknown role {}: known roles are {}; add --new-role if a new role is meant [role_unknown]",
            unknown.join(", "),
            known.join(", ")
        );
    }
    Ok(roles)
}
