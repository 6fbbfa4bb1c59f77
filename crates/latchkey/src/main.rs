//! The `latchkey` command: the server (`serve`, the default), `migrate`, and the admin
//! subcommands (in `cli/`).

use std::io::IsTerminal;
use std::process::ExitCode;

use anyhow::anyhow;
use clap::{Parser, Subcommand};
use latchkey::config::redact_url;
use latchkey::{Application, Config};
use secrecy::ExposeSecret;

mod cli;
mod otlp;

use cli::output::one_line;
use cli::{EventsCommand, KeysCommand, Output, SessionsCommand, UserCommand, WebhooksCommand};

/// Shown after the options in `--help`.
const AFTER_HELP: &str = "\
Every option can also be set with the LATCHKEY_* variable in its [env: …], or in a .env file.

Logging:
  LATCHKEY_LOG    what to log, as a tracing filter (default: info,sqlx=warn);
                  e.g. LATCHKEY_LOG=debug or LATCHKEY_LOG=latchkey=debug,sqlx=info
  NO_COLOR        no colours in the log even on a terminal
  OTEL_EXPORTER_OTLP_ENDPOINT  with the `otlp` build feature: send the spans there
                  (OTLP/HTTP, protobuf; e.g. http://127.0.0.1:4318)
Logs go to standard error, coloured only when it is a terminal (JSON with --log-json).
`serve` prints one line to standard output once it listens: the address.";

/// Latchkey authentication token server.
#[derive(Debug, Parser)]
#[command(version, about, after_help = AFTER_HELP)]
struct Cli {
    #[command(flatten)]
    config: Config,
    /// Print admin command results as JSON instead of a table.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the server (the default). Creates and migrates the database if needed, and
    /// makes the first signing key.
    Serve,
    /// Create the database if needed and apply migrations, then exit (no keys are made:
    /// the first `serve` does that).
    Migrate,
    /// Manage users.
    User {
        #[command(subcommand)]
        command: UserCommand,
    },
    /// See and revoke a user's sessions.
    Sessions {
        #[command(subcommand)]
        command: SessionsCommand,
    },
    /// Manage signing keys.
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
    /// Read the audit log of security events.
    Events {
        #[command(subcommand)]
        command: EventsCommand,
    },
    /// Test the webhook endpoints and see undelivered messages.
    Webhooks {
        #[command(subcommand)]
        command: WebhooksCommand,
    },
}

#[tokio::main]
async fn main() -> ExitCode {
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            // Once, on one line: what went wrong and, where the cause is known, what to do.
            eprintln!("error: {}", one_line(&error));
            ExitCode::FAILURE
        }
    }
}

async fn run() -> anyhow::Result<()> {
    // A missing .env file is normal; a malformed one is an error worth stopping for.
    if let Err(e) = dotenvy::dotenv() {
        if !e.not_found() {
            return Err(anyhow!("could not read .env: {e}"));
        }
    }
    let cli = Cli::parse();
    // Held until the command is done: dropping it sends the spans not yet exported.
    let _tracing = init_tracing(cli.config.log_json)?;
    let output = Output { json: cli.json };
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => serve(cli.config).await,
        Command::Migrate => {
            latchkey::app::migrate(&cli.config).await?;
            println!(
                "database is up to date: {}",
                redact_url(cli.config.database_url.expose_secret())
            );
            Ok(())
        }
        Command::User { command } => cli::user(command, &cli.config, output).await,
        Command::Sessions { command } => cli::sessions(command, &cli.config, output).await,
        Command::Keys { command } => cli::keys(command, &cli.config, output).await,
        Command::Events { command } => cli::events(command, &cli.config, output).await,
        Command::Webhooks { command } => cli::webhooks(command, &cli.config, output).await,
    }
}

async fn serve(config: Config) -> anyhow::Result<()> {
    let database = redact_url(config.database_url.expose_secret());
    let app = Application::build(config).await?;
    // The one announcement, on standard output (scripts and tests read the address from
    // it); the log has it at debug level only, so a terminal shows it once.
    tracing::debug!(address = %app.local_addr(), %database, "latchkey listening");
    println!(
        "latchkey listening on http://{} (database {database})",
        app.local_addr()
    );
    app.run_until(shutdown_signal()).await?;
    Ok(())
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

/// Logs to standard error; with the `otlp` feature and `OTEL_EXPORTER_OTLP_ENDPOINT`
/// set, the same spans (what `LATCHKEY_LOG` lets through) also go to that collector.
fn init_tracing(json: bool) -> anyhow::Result<Option<otlp::Exporting>> {
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    use tracing_subscriber::Layer;

    let filter = tracing_subscriber::EnvFilter::try_from_env("LATCHKEY_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,sqlx=warn"));
    // Colour codes only for a person at a terminal, never into files or log collectors.
    let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
    let colour = std::io::stderr().is_terminal() && !no_color;
    let logs = tracing_subscriber::fmt::layer()
        .with_ansi(colour)
        .with_writer(std::io::stderr);
    let logs = if json {
        logs.json().boxed()
    } else {
        logs.boxed()
    };
    let (spans, exporting) = match otlp::exporter()? {
        Some((layer, exporting)) => (Some(layer), Some(exporting)),
        None => (None, None),
    };
    tracing_subscriber::registry()
        .with(filter)
        .with(logs)
        .with(spans)
        .init();
    if let Some(exporting) = &exporting {
        tracing::info!(endpoint = %exporting.endpoint(), "exporting spans over OTLP/HTTP");
    }
    #[cfg(not(feature = "otlp"))]
    otlp::warn_if_asked_for();
    Ok(exporting)
}
