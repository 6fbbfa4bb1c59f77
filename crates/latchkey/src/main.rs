//! The `latchkey` command: the server (`serve`, the default) and admin subcommands.

use std::io::BufRead;

use anyhow::{bail, Context};
use clap::{Parser, Subcommand};
use latchkey::service::RequestContext;
use latchkey::{Application, Config};
use latchkey_core::model::{Email, Password, Role};

/// Latchkey authentication token server.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
    #[command(flatten)]
    config: Config,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the server (the default).
    Serve,
    /// Apply database migrations and exit.
    Migrate,
    /// Manage users.
    User {
        #[command(subcommand)]
        command: UserCommand,
    },
    /// Manage signing keys.
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
}

#[derive(Debug, Subcommand)]
enum UserCommand {
    /// Create a user. The password is read from standard input (one line).
    Add {
        /// The user's e-mail address.
        #[arg(long)]
        email: String,
        /// A role; repeat for several. Default: user.
        #[arg(long = "role")]
        roles: Vec<String>,
    },
    /// Turn a user's second factor off (a lost authenticator and recovery codes).
    ResetMfa {
        /// The user's e-mail address.
        email: String,
    },
}

#[derive(Debug, Subcommand)]
enum KeysCommand {
    /// Make a new signing key; the old one keeps verifying until its tokens expire.
    Rotate,
    /// List the signing keys.
    List,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    // A missing .env file is normal; a malformed one is an error worth stopping for.
    if let Err(e) = dotenvy::dotenv() {
        if !e.not_found() {
            bail!("could not read .env: {e}");
        }
    }
    let cli = Cli::parse();
    init_tracing(cli.config.log_json);
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => serve(cli.config).await,
        Command::Migrate => {
            latchkey::app::build_service(&cli.config).await?;
            println!(
                "database is up to date: {}",
                redact_url(&cli.config.database_url)
            );
            Ok(())
        }
        Command::User {
            command: UserCommand::Add { email, roles },
        } => {
            let service = latchkey::app::build_service(&cli.config).await?;
            let email = Email::parse(&email).context("invalid e-mail address")?;
            let roles = if roles.is_empty() {
                vec![Role::user()]
            } else {
                roles
                    .iter()
                    .map(|r| Role::parse(r))
                    .collect::<Result<Vec<_>, _>>()
                    .context("invalid role")?
            };
            let mut line = String::new();
            std::io::stdin()
                .lock()
                .read_line(&mut line)
                .context("could not read the password from stdin")?;
            let password = Password::parse(line.trim_end_matches(['\r', '\n']).to_owned())
                .context("invalid password")?;
            let user = service
                .create_user(email, password, roles, &RequestContext::default())
                .await?;
            println!("created user {} <{}>", user.id, user.email);
            Ok(())
        }
        Command::User {
            command: UserCommand::ResetMfa { email },
        } => {
            let service = latchkey::app::build_service(&cli.config).await?;
            service
                .reset_mfa_by_email(&email, &RequestContext::default())
                .await?;
            println!("second factor of <{email}> reset");
            Ok(())
        }
        Command::Keys {
            command: KeysCommand::Rotate,
        } => {
            let service = latchkey::app::build_service(&cli.config).await?;
            let kid = service.rotate_keys(&RequestContext::default()).await?;
            println!(
                "new signing key {kid} ({}); running servers pick it up within {:?}",
                cli.config.algorithm, cli.config.key_reload.0
            );
            Ok(())
        }
        Command::Keys {
            command: KeysCommand::List,
        } => {
            let service = latchkey::app::build_service(&cli.config).await?;
            for key in service.signing_keys().await? {
                let state = match key.retired_at {
                    None => "active".to_owned(),
                    Some(at) => format!("retired at {}", at.unix_seconds()),
                };
                println!(
                    "{}\t{}\tcreated {}\t{state}",
                    key.kid,
                    key.algorithm,
                    key.created_at.unix_seconds()
                );
            }
            Ok(())
        }
    }
}

async fn serve(config: Config) -> anyhow::Result<()> {
    let database = redact_url(&config.database_url);
    let app = Application::build(config).await?;
    tracing::info!(address = %app.local_addr(), %database, "latchkey listening");
    println!(
        "latchkey listening on http://{} (database {database})",
        app.local_addr()
    );
    app.run_until(shutdown_signal()).await?;
    Ok(())
}

/// The database URL without a password, for logs.
fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let userinfo = &url[scheme_end + 3..at];
            let user = userinfo.split(':').next().unwrap_or("");
            format!("{}://{user}:***@{}", &url[..scheme_end], &url[at + 1..])
        }
        _ => url.to_owned(),
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
}

fn init_tracing(json: bool) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("LATCHKEY_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,sqlx=warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}
