//! `latchkey keys …`: list the signing keys, rotate to a new one, revoke a leaked one.

use clap::Subcommand;
use latchkey::service::AuthService;
use serde::Serialize;

use super::output::{auth_error, print_json, Table};
use super::{admin_context, Output};

/// `latchkey keys …`.
#[derive(Debug, Subcommand)]
pub(crate) enum KeysCommand {
    /// Make a new signing key; the old one keeps verifying until its tokens expire.
    Rotate,
    /// List the signing keys, newest first.
    List,
    /// Revoke a leaked key: it is deleted (an active key is replaced first) and its
    /// tokens stop verifying on every server within LATCHKEY_REVOCATION_POLL, and in
    /// every service reading the revocation feed.
    Revoke {
        /// The key's id, as `keys list` shows it.
        kid: String,
    },
}

/// A key as listed: never its private part.
#[derive(Debug, Serialize)]
struct KeyView {
    kid: String,
    algorithm: String,
    active: bool,
    created_at: String,
    retired_at: Option<String>,
}

/// `keys list`.
pub(crate) async fn list(service: &AuthService, output: Output) -> anyhow::Result<()> {
    let keys: Vec<KeyView> = service
        .signing_keys()
        .await
        .map_err(auth_error)?
        .into_iter()
        .map(|key| KeyView {
            kid: key.kid.clone(),
            algorithm: key.algorithm.clone(),
            active: key.retired_at.is_none(),
            created_at: key.created_at.to_rfc3339(),
            retired_at: key.retired_at.map(|at| at.to_rfc3339()),
        })
        .collect();
    if output.json {
        #[derive(Serialize)]
        struct Keys {
            keys: Vec<KeyView>,
        }
        return print_json(&Keys { keys });
    }
    let mut table = Table::new(&["KID", "ALGORITHM", "CREATED", "STATE"]);
    for key in keys {
        let state = match key.retired_at {
            None => "active".to_owned(),
            Some(at) => format!("retired {at}"),
        };
        table.row(vec![key.kid, key.algorithm, key.created_at, state]);
    }
    table.print();
    Ok(())
}

/// `keys revoke KID`, on a service started the server's way (it may make a key).
pub(crate) async fn revoke(service: &AuthService, kid: &str, output: Output) -> anyhow::Result<()> {
    service
        .revoke_key(kid, &admin_context())
        .await
        .map_err(auth_error)?;
    if output.json {
        #[derive(Serialize)]
        struct Revoked<'a> {
            revoked: &'a str,
        }
        return print_json(&Revoked { revoked: kid });
    }
    println!("revoked signing key {kid}; running servers refuse its tokens within LATCHKEY_REVOCATION_POLL");
    Ok(())
}

/// `keys rotate`, on a service started the server's way (it makes keys).
pub(crate) async fn rotate(
    service: &AuthService,
    reload: std::time::Duration,
    output: Output,
) -> anyhow::Result<()> {
    let kid = service
        .rotate_keys(&admin_context())
        .await
        .map_err(auth_error)?;
    if output.json {
        #[derive(Serialize)]
        struct Rotated {
            kid: String,
        }
        return print_json(&Rotated { kid });
    }
    println!(
        "new signing key {kid} ({}); running servers pick it up within {reload:?}",
        service.policy().algorithm
    );
    Ok(())
}
