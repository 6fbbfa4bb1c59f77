//! The admin subcommands of the `latchkey` binary: users, sessions, signing keys, the
//! audit log and webhooks.
//!
//! They read the server's own settings (`LATCHKEY_DATABASE_URL` …) and go through the
//! same [`AuthService`](latchkey::service::AuthService) methods as the admin HTTP
//! routes, so an admin change from a shell obeys the same rules. Commands that only
//! read, or change existing rows, open the database with
//! [`Database::MustExist`]: a mistyped URL fails with a message instead of creating an
//! empty database. Output is an aligned table, or JSON with `--json`.

pub(crate) mod events;
pub(crate) mod keys;
pub(crate) mod output;
pub(crate) mod sessions;
pub(crate) mod users;
pub(crate) mod webhooks;

use latchkey::app::{self, Database};
use latchkey::service::RequestContext;
use latchkey::Config;

pub(crate) use events::EventsCommand;
pub(crate) use keys::KeysCommand;
pub(crate) use sessions::SessionsCommand;
pub(crate) use users::UserCommand;
pub(crate) use webhooks::WebhooksCommand;

/// How to print results.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Output {
    /// JSON instead of a table.
    pub(crate) json: bool,
}

/// Who is acting, as the audit log records it: the command line, no address.
pub(crate) fn admin_context() -> RequestContext {
    RequestContext {
        client_ip: None,
        user_agent: Some(concat!("latchkey-cli/", env!("CARGO_PKG_VERSION")).to_owned()),
    }
}

/// `latchkey user …`.
pub(crate) async fn user(
    command: UserCommand,
    config: &Config,
    output: Output,
) -> anyhow::Result<()> {
    let database = if command.creates_database() {
        Database::CreateIfMissing
    } else {
        Database::MustExist
    };
    let service = app::open_admin_service(config, database).await?;
    command.run(&service, output).await
}

/// `latchkey sessions …`.
pub(crate) async fn sessions(
    command: SessionsCommand,
    config: &Config,
    output: Output,
) -> anyhow::Result<()> {
    let service = app::open_admin_service(config, Database::MustExist).await?;
    command.run(&service, output).await
}

/// `latchkey keys …`.
pub(crate) async fn keys(
    command: KeysCommand,
    config: &Config,
    output: Output,
) -> anyhow::Result<()> {
    match command {
        KeysCommand::List => {
            let service = app::open_admin_service(config, Database::MustExist).await?;
            keys::list(&service, output).await
        }
        KeysCommand::Rotate => {
            let service = app::build_service_on_existing(config).await?;
            keys::rotate(&service, config.key_reload.0, output).await
        }
        KeysCommand::Revoke { kid } => {
            let service = app::build_service_on_existing(config).await?;
            keys::revoke(&service, &kid, output).await
        }
    }
}

/// `latchkey events …` (read-only).
pub(crate) async fn events(
    command: EventsCommand,
    config: &Config,
    output: Output,
) -> anyhow::Result<()> {
    let service = app::open_admin_service(config, Database::MustExist).await?;
    command.run(&service, output).await
}

/// `latchkey webhooks …`: `test` needs no database; `status` reads it.
pub(crate) async fn webhooks(
    command: WebhooksCommand,
    config: &Config,
    output: Output,
) -> anyhow::Result<()> {
    match command {
        WebhooksCommand::Test => {
            config.validate()?;
            webhooks::test(&config.webhooks, output).await
        }
        WebhooksCommand::Status { limit } => {
            let service = app::open_admin_service(config, Database::MustExist).await?;
            webhooks::status(&service, limit, output).await
        }
    }
}
