//! The `latchkey` binary's admin commands, run as a person or a script would, against
//! the same SQLite database as a running server: tables and `--json`, changes the
//! server sees, the last-admin rule. Start-up behaviour (read-only commands that create
//! nothing, errors, logs) is in `startup`.

use std::path::Path;
use std::process::Stdio;

use reqwest::StatusCode;
use serde_json::Value;
use tokio::io::AsyncWriteExt;

use crate::helpers::*;

mod events_and_webhooks;
mod startup;

/// What a run of the binary left behind.
pub(super) struct Run {
    pub(super) success: bool,
    pub(super) stdout: String,
    pub(super) stderr: String,
}

impl Run {
    pub(super) fn json(&self) -> Value {
        assert!(self.success, "failed: {}", self.stderr);
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| panic!("{e}: {}", self.stdout))
    }

    /// A failure explained in exactly one line of standard error, holding `needle`.
    pub(super) fn assert_failed_with(&self, needle: &str) {
        assert!(!self.success, "succeeded: {}", self.stdout);
        let lines: Vec<&str> = self.stderr.lines().collect();
        assert_eq!(lines.len(), 1, "one line expected: {:?}", self.stderr);
        assert!(
            lines[0].contains(needle),
            "{needle:?} not in {:?}",
            lines[0]
        );
    }
}

pub(super) fn url_of(db: &Path) -> String {
    format!("sqlite://{}", db.display())
}

pub(super) async fn latchkey_with_input(url: &str, args: &[&str], input: Option<&str>) -> Run {
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_latchkey"))
        .args(["--database-url", url])
        .args(args)
        .env("LATCHKEY_LOG", "warn")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    if let Some(input) = input {
        stdin.write_all(input.as_bytes()).await.unwrap();
    }
    drop(stdin);
    let output = child.wait_with_output().await.unwrap();
    Run {
        success: output.status.success(),
        stdout: String::from_utf8(output.stdout).unwrap(),
        stderr: String::from_utf8(output.stderr).unwrap(),
    }
}

pub(super) async fn latchkey(url: &str, args: &[&str]) -> Run {
    latchkey_with_input(url, args, None).await
}

/// The roles of `email` as `user show --json` reports them.
async fn roles_of(url: &str, email: &str) -> Vec<String> {
    let shown = latchkey(url, &["user", "show", email, "--json"])
        .await
        .json();
    texts(&shown["user"]["roles"])
}

fn texts(array: &Value) -> Vec<String> {
    array
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn user_list_prints_an_aligned_table_and_json() {
    let (_dir, db) = temp_db();
    let app = spawn_app_on(&db, &[]).await;
    app.create_admin("root@example.com").await;
    app.user_with_session("bob@example.com").await;
    let url = url_of(&db);

    let table = latchkey(&url, &["user", "list"]).await;
    assert!(table.success, "{}", table.stderr);
    let lines: Vec<&str> = table.stdout.lines().collect();
    assert_eq!(lines.len(), 3, "{}", table.stdout);
    assert!(lines[0].starts_with("EMAIL"), "{}", lines[0]);
    assert!(lines[1].starts_with("bob@example.com") && lines[2].starts_with("root@example.com"));
    // Every column starts at the same place on every line.
    let roles_at = lines[0].find("ROLES").unwrap();
    assert_eq!(lines[1].find("user").unwrap(), roles_at, "{}", table.stdout);
    assert_eq!(
        lines[2].find("user,admin").unwrap(),
        roles_at,
        "{}",
        table.stdout
    );

    let listed = latchkey(&url, &["user", "list", "--json"]).await.json();
    let users = listed["users"].as_array().unwrap();
    let emails: Vec<&str> = users.iter().map(|u| u["email"].as_str().unwrap()).collect();
    assert_eq!(emails, ["bob@example.com", "root@example.com"]);
    let created = users[0]["created_at"].as_str().unwrap();
    assert!(
        humantime::parse_rfc3339(created).is_ok(),
        "RFC 3339: {created}"
    );
    assert_eq!(users[0]["disabled"], false);

    let shown = latchkey(&url, &["user", "show", "BOB@example.com", "--json"])
        .await
        .json();
    assert_eq!(shown["user"]["email"], "bob@example.com");
    assert_eq!(shown["sessions"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn set_role_disable_enable_and_delete_take_effect_on_the_server() {
    let (_dir, db) = temp_db();
    let app = spawn_app_on(&db, &[]).await;
    app.create_admin("root@example.com").await;
    let bob = app.user_with_session("bob@example.com").await;
    let url = url_of(&db);

    // An added role arrives at the next refresh.
    let run = latchkey(
        &url,
        &[
            "user",
            "set-role",
            "bob@example.com",
            "--role",
            "admin",
            "--role",
            "user",
        ],
    )
    .await;
    assert!(run.success, "{}", run.stderr);
    assert_eq!(roles_of(&url, "bob@example.com").await, ["admin", "user"]);
    let refreshed = app.refresh_body(&bob.refresh).await;
    assert_eq!(refreshed.status(), StatusCode::OK);
    let bob = Tokens::from(refreshed.json::<Value>().await.unwrap());
    let admin_list = app
        .client
        .get(app.url("/admin/users"))
        .bearer_auth(&bob.access)
        .send()
        .await
        .unwrap();
    assert_eq!(admin_list.status(), StatusCode::OK);

    // A removed role revokes the sessions: the refresh token stops at once.
    let run = latchkey(
        &url,
        &["user", "set-role", "bob@example.com", "--role", "user"],
    )
    .await;
    assert!(run.success, "{}", run.stderr);
    assert_eq!(
        app.refresh_body(&bob.refresh).await.status(),
        StatusCode::UNAUTHORIZED
    );
    app.service.sync_revocations().await.unwrap();
    assert_eq!(app.me(&bob.access).await.status(), StatusCode::UNAUTHORIZED);

    // Disabled: the right password gets account_disabled; enabled again: it works.
    let bob = app.login_body("bob@example.com").await;
    let run = latchkey(&url, &["user", "disable", "bob@example.com"]).await;
    assert!(run.success, "{}", run.stderr);
    assert_eq!(
        app.refresh_body(&bob.refresh).await.status(),
        StatusCode::UNAUTHORIZED
    );
    let login = app
        .post_json(
            "/auth/login",
            &serde_json::json!({ "email": "bob@example.com", "password": PASSWORD }),
        )
        .await;
    assert_error(login, StatusCode::FORBIDDEN, "account_disabled").await;
    let shown = latchkey(&url, &["user", "show", "bob@example.com", "--json"])
        .await
        .json();
    assert_eq!(shown["user"]["disabled"], true);
    assert!(shown["user"]["disabled_at"]
        .as_str()
        .is_some_and(|at| humantime::parse_rfc3339(at).is_ok()));
    let run = latchkey(&url, &["user", "enable", "bob@example.com"]).await;
    assert!(run.success, "{}", run.stderr);
    app.login_body("bob@example.com").await;

    // Deleted: gone for the server and for the CLI.
    let run = latchkey(&url, &["user", "delete", "bob@example.com"]).await;
    assert!(run.success, "{}", run.stderr);
    let login = app
        .post_json(
            "/auth/login",
            &serde_json::json!({ "email": "bob@example.com", "password": PASSWORD }),
        )
        .await;
    assert_error(login, StatusCode::UNAUTHORIZED, "invalid_credentials").await;
    latchkey(&url, &["user", "show", "bob@example.com"])
        .await
        .assert_failed_with("user_not_found");
}

#[tokio::test]
async fn the_last_admin_cannot_be_disabled_demoted_or_deleted_from_the_cli() {
    let (_dir, db) = temp_db();
    let app = spawn_app_on(&db, &[]).await;
    app.create_admin("root@example.com").await;
    let url = url_of(&db);
    for args in [
        &["user", "disable", "root@example.com"][..],
        &["user", "set-role", "root@example.com", "--role", "user"],
        &["user", "delete", "root@example.com"],
    ] {
        latchkey(&url, args).await.assert_failed_with("last_admin");
    }
    assert_eq!(roles_of(&url, "root@example.com").await, ["user", "admin"]);
    app.login_body("root@example.com").await;
}

#[tokio::test]
async fn an_unknown_role_is_refused_unless_new_role_says_it_is_meant() {
    let (_dir, db) = temp_db();
    let app = spawn_app_on(&db, &[]).await;
    app.user_with_session("bob@example.com").await;
    let url = url_of(&db);

    latchkey(
        &url,
        &["user", "set-role", "bob@example.com", "--role", "admni"],
    )
    .await
    .assert_failed_with("unknown role admni");
    assert_eq!(roles_of(&url, "bob@example.com").await, ["user"]);

    let run = latchkey(
        &url,
        &[
            "user",
            "set-role",
            "bob@example.com",
            "--role",
            "editor",
            "--new-role",
        ],
    )
    .await;
    assert!(run.success, "{}", run.stderr);
    assert_eq!(roles_of(&url, "bob@example.com").await, ["editor"]);
    // Known now that a user has it.
    let run = latchkey_with_input(
        &url,
        &[
            "user",
            "add",
            "--email",
            "eve@example.com",
            "--role",
            "editor",
        ],
        Some(&format!("{PASSWORD}\n")),
    )
    .await;
    assert!(run.success, "{}", run.stderr);
}

#[tokio::test]
async fn sessions_are_listed_and_revoked_one_or_all() {
    let (_dir, db) = temp_db();
    let app = spawn_app_on(&db, &[]).await;
    let first = app.user_with_session("bob@example.com").await;
    let second = app.login_body("bob@example.com").await;
    app.login_body("bob@example.com").await;
    let url = url_of(&db);

    let table = latchkey(&url, &["sessions", "list", "--user", "bob@example.com"]).await;
    assert!(table.success, "{}", table.stderr);
    assert!(table.stdout.starts_with("ID"), "{}", table.stdout);
    assert_eq!(table.stdout.lines().count(), 4, "{}", table.stdout);

    let listed = latchkey(
        &url,
        &["sessions", "list", "--user", "bob@example.com", "--json"],
    )
    .await
    .json();
    let sessions = listed["sessions"].as_array().unwrap();
    assert_eq!(sessions.len(), 3);
    // Newest first: the first login is last.
    let oldest = sessions[2]["id"].as_str().unwrap().to_owned();
    let run = latchkey(
        &url,
        &[
            "sessions",
            "revoke",
            "--user",
            "bob@example.com",
            "--session",
            &oldest,
            "--json",
        ],
    )
    .await;
    assert_eq!(run.json()["revoked"], 1);
    assert_eq!(
        app.refresh_body(&first.refresh).await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        app.refresh_body(&second.refresh).await.status(),
        StatusCode::OK
    );

    // The same id again, or one that is not a session id: not found.
    latchkey(
        &url,
        &[
            "sessions",
            "revoke",
            "--user",
            "bob@example.com",
            "--session",
            &oldest,
        ],
    )
    .await
    .assert_failed_with("session_not_found");
    latchkey(
        &url,
        &[
            "sessions",
            "revoke",
            "--user",
            "bob@example.com",
            "--session",
            "nope",
        ],
    )
    .await
    .assert_failed_with("session_not_found");

    let run = latchkey(
        &url,
        &["sessions", "revoke", "--user", "bob@example.com", "--all"],
    )
    .await;
    assert!(run.success, "{}", run.stderr);
    assert_eq!(run.stdout.trim(), "revoked 2 sessions of bob@example.com");
    let listed = latchkey(
        &url,
        &["sessions", "list", "--user", "bob@example.com", "--json"],
    )
    .await
    .json();
    assert_eq!(listed["sessions"].as_array().unwrap().len(), 0);
}

#[tokio::test]
async fn addresses_with_invisible_characters_are_refused() {
    let (_dir, db) = temp_db();
    let app = spawn_app_on(&db, &[]).await;
    let spoof = "admin\u{202E}@example.com";
    let run = latchkey_with_input(
        &url_of(&db),
        &["user", "add", "--email", spoof],
        Some(&format!("{PASSWORD}\n")),
    )
    .await;
    run.assert_failed_with("email_invalid");
    let response = app
        .post_json(
            "/auth/register",
            &serde_json::json!({ "email": "ad\u{200B}min@example.com", "password": PASSWORD }),
        )
        .await;
    assert_error(response, StatusCode::BAD_REQUEST, "email_invalid").await;
}

#[tokio::test]
async fn keys_revoke_ends_the_tokens_of_a_leaked_key() {
    let (_dir, db) = temp_db();
    let url = url_of(&db);
    let app = spawn_app_on(&db, &["--revocation-poll", "50ms"]).await;
    let user = app.user_with_session("lee@example.com").await;
    let listed = latchkey(&url, &["keys", "list", "--json"]).await.json();
    let old_kid = listed["keys"][0]["kid"].as_str().unwrap().to_owned();

    let revoked = latchkey(&url, &["keys", "revoke", &old_kid]).await;
    assert!(revoked.success, "{}", revoked.stderr);
    // The running server learns it from the store's log.
    let refused = crate::replicas::eventually(std::time::Duration::from_secs(5), || async {
        app.me(&user.access).await.status() == StatusCode::UNAUTHORIZED
    })
    .await;
    assert!(
        refused.is_some(),
        "the server still accepts the revoked key"
    );
    let listed = latchkey(&url, &["keys", "list", "--json"]).await.json();
    let kids = texts(
        &listed["keys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k["kid"].clone())
            .collect(),
    );
    assert_eq!(kids.len(), 1);
    assert_ne!(kids[0], old_kid);
    let again = latchkey(&url, &["keys", "revoke", &old_kid]).await;
    assert!(!again.success);
    let last = again.stderr.lines().last().unwrap_or("");
    assert!(last.contains("[key_not_found]"), "{}", again.stderr);
    app.stop().await;
}
