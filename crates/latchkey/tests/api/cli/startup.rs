//! Start-up as a new user meets it: read-only commands that create nothing, `migrate`
//! without keys, start-up errors in one line, logs without colour codes off a terminal,
//! `LATCHKEY_LOG` in `--help`.

use std::process::Stdio;

use super::{latchkey, url_of};
use crate::helpers::*;

#[tokio::test]
async fn read_only_commands_on_a_missing_database_fail_and_create_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("typo.db");
    let url = url_of(&db);
    for args in [
        &["keys", "list"][..],
        &["keys", "rotate"],
        &["user", "list"],
        &["user", "show", "bob@example.com"],
        &["user", "disable", "bob@example.com"],
        &["user", "set-role", "bob@example.com", "--role", "user"],
        &["sessions", "list", "--user", "bob@example.com"],
        &["sessions", "revoke", "--user", "bob@example.com", "--all"],
    ] {
        latchkey(&url, args)
            .await
            .assert_failed_with(&format!("no database at {}", db.display()));
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            0,
            "{args:?} created a file"
        );
    }
}

#[tokio::test]
async fn read_only_commands_on_an_unmigrated_database_fail() {
    let (_dir, db) = temp_db();
    std::fs::write(&db, b"").unwrap();
    latchkey(&url_of(&db), &["user", "list"])
        .await
        .assert_failed_with("run `latchkey migrate` first");
    assert_eq!(std::fs::metadata(&db).unwrap().len(), 0, "nothing written");
}

#[tokio::test]
async fn migrate_creates_the_schema_but_no_keys() {
    let (_dir, db) = temp_db();
    let url = url_of(&db);
    let run = latchkey(&url, &["migrate"]).await;
    assert!(run.success, "{}", run.stderr);
    assert!(db.exists());
    let keys = latchkey(&url, &["keys", "list", "--json"]).await.json();
    assert_eq!(keys["keys"], serde_json::json!([]));

    // The first server start makes the key; the listing shows times in RFC 3339.
    spawn_app_on(&db, &[]).await.stop().await;
    let keys = latchkey(&url, &["keys", "list", "--json"]).await.json();
    let created = keys["keys"][0]["created_at"].as_str().unwrap();
    assert!(humantime::parse_rfc3339(created).is_ok(), "{created}");
    let table = latchkey(&url, &["keys", "list"]).await;
    assert!(table.stdout.contains(created), "{}", table.stdout);
}

#[tokio::test]
async fn a_missing_directory_is_named_in_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("data");
    let url = url_of(&missing.join("latchkey.db"));
    for args in [&["migrate"][..], &["serve"], &["user", "list"]] {
        let run = latchkey(&url, &[&["--bind", "127.0.0.1:0"], args].concat()).await;
        run.assert_failed_with(&format!("directory {} does not exist", missing.display()));
        assert!(!run.stderr.contains("Caused by"), "{}", run.stderr);
    }
    assert!(!missing.exists());
}

#[tokio::test]
async fn serve_announces_itself_once_without_colour_codes_off_a_terminal() {
    use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};

    let (_dir, db) = temp_db();
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_latchkey"))
        .args(["--database-url", &url_of(&db), "--bind", "127.0.0.1:0"])
        .env("LATCHKEY_LOG", "debug,sqlx=warn")
        .env_remove("NO_COLOR")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    stdout.read_line(&mut line).await.unwrap();
    assert!(line.starts_with("latchkey listening on http://"), "{line}");
    child.kill().await.unwrap();
    let mut rest = String::new();
    stdout.read_to_string(&mut rest).await.unwrap();
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .await
        .unwrap();
    assert!(!rest.contains("listening"), "announced twice: {rest}");
    // The debug log has the event (so the log is being written), without ANSI codes.
    assert!(stderr.contains("latchkey listening"), "{stderr}");
    assert!(!stderr.contains('\u{1b}'), "colour codes in {stderr:?}");
}

#[tokio::test]
async fn help_lists_latchkey_log() {
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_latchkey"))
        .arg("--help")
        .output()
        .await
        .unwrap();
    assert!(output.status.success());
    let help = String::from_utf8_lossy(&output.stdout);
    // The variable itself, not a longer name that begins with it (LATCHKEY_LOGIN_…).
    assert!(
        help.split(|c: char| !c.is_ascii_alphanumeric() && c != '_')
            .any(|word| word == "LATCHKEY_LOG"),
        "{help}"
    );
}
