//! The schema migrations of both backends, embedded in the binary.
//!
//! Listed here by hand rather than by `sqlx::migrate!`: that macro builds sqlx's macro
//! crate, which compiles a second, host-side copy of sqlx, tokio and SQLite into every
//! release build. A test checks these lists against the files under `migrations/`, so a
//! new file that is not listed fails it. A migration, once released, never changes: the
//! checksum of each applied one is stored and checked on every start.

use std::borrow::Cow;
use std::future::Future;
use std::pin::Pin;

use latchkey_core::store::StoreError;
use sqlx::error::BoxDynError;
use sqlx::migrate::{Migration, MigrationSource, MigrationType, Migrator};

use crate::error::map_migrate_error;

/// One backend's migrations, in version order.
#[derive(Debug, Clone, Copy)]
pub(crate) struct EmbeddedMigrations(&'static [EmbeddedMigration]);

/// One migration file: `<version>_<description>.sql`, its text included at build time.
#[derive(Debug)]
pub(crate) struct EmbeddedMigration {
    version: i64,
    /// As sqlx names it: the file name after the version, `_` read as a space.
    description: &'static str,
    sql: &'static str,
}

/// The SQLite schema.
pub(crate) static SQLITE: EmbeddedMigrations = EmbeddedMigrations(&[
    EmbeddedMigration {
        version: 1,
        description: "initial",
        sql: include_str!("../migrations/sqlite/0001_initial.sql"),
    },
    EmbeddedMigration {
        version: 2,
        description: "rotation path",
        sql: include_str!("../migrations/sqlite/0002_rotation_path.sql"),
    },
    EmbeddedMigration {
        version: 3,
        description: "tokens by locator",
        sql: include_str!("../migrations/sqlite/0003_tokens_by_locator.sql"),
    },
    EmbeddedMigration {
        version: 4,
        description: "accounts",
        sql: include_str!("../migrations/sqlite/0004_accounts.sql"),
    },
    EmbeddedMigration {
        version: 5,
        description: "mfa",
        sql: include_str!("../migrations/sqlite/0005_mfa.sql"),
    },
    EmbeddedMigration {
        version: 6,
        description: "key revocation",
        sql: include_str!("../migrations/sqlite/0006_key_revocation.sql"),
    },
    EmbeddedMigration {
        version: 7,
        description: "email",
        sql: include_str!("../migrations/sqlite/0007_email.sql"),
    },
    EmbeddedMigration {
        version: 8,
        description: "webhooks",
        sql: include_str!("../migrations/sqlite/0008_webhooks.sql"),
    },
]);

/// The PostgreSQL schema.
pub(crate) static POSTGRES: EmbeddedMigrations = EmbeddedMigrations(&[
    EmbeddedMigration {
        version: 1,
        description: "initial",
        sql: include_str!("../migrations/postgres/0001_initial.sql"),
    },
    EmbeddedMigration {
        version: 2,
        description: "tokens by locator",
        sql: include_str!("../migrations/postgres/0002_tokens_by_locator.sql"),
    },
    EmbeddedMigration {
        version: 3,
        description: "accounts",
        sql: include_str!("../migrations/postgres/0003_accounts.sql"),
    },
    EmbeddedMigration {
        version: 4,
        description: "mfa",
        sql: include_str!("../migrations/postgres/0004_mfa.sql"),
    },
    EmbeddedMigration {
        version: 5,
        description: "key revocation",
        sql: include_str!("../migrations/postgres/0005_key_revocation.sql"),
    },
    EmbeddedMigration {
        version: 6,
        description: "email",
        sql: include_str!("../migrations/postgres/0006_email.sql"),
    },
    EmbeddedMigration {
        version: 7,
        description: "webhooks",
        sql: include_str!("../migrations/postgres/0007_webhooks.sql"),
    },
]);

impl EmbeddedMigrations {
    /// A migrator that applies these migrations (each in its own transaction).
    pub(crate) async fn migrator(self) -> Result<Migrator, StoreError> {
        Migrator::new(self).await.map_err(map_migrate_error)
    }

    fn migrations(self) -> Vec<Migration> {
        self.0
            .iter()
            .map(|m| {
                Migration::new(
                    m.version,
                    Cow::Borrowed(m.description),
                    MigrationType::Simple,
                    Cow::Borrowed(m.sql),
                    false,
                )
            })
            .collect()
    }
}

impl MigrationSource<'static> for EmbeddedMigrations {
    fn resolve(
        self,
    ) -> Pin<Box<dyn Future<Output = Result<Vec<Migration>, BoxDynError>> + Send + 'static>> {
        Box::pin(async move { Ok(self.migrations()) })
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    /// What identifies an applied migration: version, description, kind and checksum.
    fn identities(migrations: &[Migration]) -> Vec<(i64, String, bool, Vec<u8>)> {
        migrations
            .iter()
            .map(|m| {
                (
                    m.version,
                    m.description.to_string(),
                    m.migration_type == MigrationType::Simple && !m.no_tx,
                    m.checksum.to_vec(),
                )
            })
            .collect()
    }

    #[test]
    fn embedded_migrations_match_the_directories() {
        for (embedded, dir) in [(SQLITE, "sqlite"), (POSTGRES, "postgres")] {
            let path = Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("migrations")
                .join(dir);
            let mut on_disk: Vec<Migration> = sqlx::migrate::resolve_blocking(&path)
                .unwrap()
                .into_iter()
                .map(|(migration, _)| migration)
                .collect();
            on_disk.sort_by_key(|m| m.version);
            assert_eq!(
                identities(&embedded.migrations()),
                identities(&on_disk),
                "migrations/{dir} and the list in migrations.rs differ"
            );
        }
    }
}
