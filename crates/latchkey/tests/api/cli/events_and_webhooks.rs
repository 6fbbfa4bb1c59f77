//! `latchkey events tail` (a table, `--user`, `--json` lines, `--follow` printing new
//! events as they are recorded) and `latchkey webhooks test|status`, run as an operator
//! would against the same database as a running server.

use std::process::Stdio;
use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader, Lines};
use tokio::process::ChildStdout;

use super::{latchkey, url_of};
use crate::helpers::*;
use crate::webhooks::{assert_signed, Receiver, SECRET};

#[tokio::test]
async fn events_tail_prints_a_table_filters_by_user_and_prints_json_lines() {
    let (_dir, db) = temp_db();
    let app = spawn_app_on(&db, &[]).await;
    app.user_with_session("ann@example.com").await;
    app.user_with_session("bob@example.com").await;
    let url = url_of(&db);

    let table = latchkey(&url, &["events", "tail"]).await;
    assert!(table.success, "{}", table.stderr);
    let lines: Vec<&str> = table.stdout.lines().collect();
    assert!(
        lines[0].starts_with("AT") && lines[0].contains("KIND"),
        "{}",
        table.stdout
    );
    // Oldest first: ann registered before bob logged in; columns line up.
    let kind_at = lines[0].find("KIND").unwrap();
    assert!(lines[1].contains("user_registered") && lines[1].contains("ann@example.com"));
    assert!(lines.last().unwrap().contains("bob@example.com"));
    for line in &lines[1..] {
        assert_eq!(line.get(kind_at - 2..kind_at), Some("  "), "{line}");
        assert!(line.as_bytes()[kind_at].is_ascii_lowercase(), "{line}");
    }

    let json = latchkey(
        &url,
        &["events", "tail", "--user", "ann@example.com", "--json"],
    )
    .await;
    assert!(json.success, "{}", json.stderr);
    let events: Vec<Value> = json
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let kinds: Vec<&str> = events.iter().map(|e| e["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["user_registered", "login_succeeded", "new_device"]);
    assert!(events.iter().all(|e| e["email"] == "ann@example.com"));

    let limited = latchkey(&url, &["events", "tail", "-n", "1", "--json"]).await;
    assert_eq!(limited.stdout.lines().count(), 1, "{}", limited.stdout);
    latchkey(&url, &["events", "tail", "--user", "nobody@example.com"])
        .await
        .assert_failed_with("[user_not_found]");
}

/// The next line the follower prints, as JSON (failing after a minute, not hanging).
async fn next_json(lines: &mut Lines<BufReader<ChildStdout>>) -> Value {
    let line = tokio::time::timeout(Duration::from_secs(60), lines.next_line())
        .await
        .expect("a line within a minute")
        .unwrap()
        .expect("the follower is still running");
    serde_json::from_str(&line).unwrap()
}

#[tokio::test]
async fn events_tail_follow_prints_new_events_as_they_are_recorded() {
    let (_dir, db) = temp_db();
    let app = spawn_app_on(&db, &[]).await;
    app.user_with_session("first@example.com").await;
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_latchkey"))
        .args(["--database-url", &url_of(&db)])
        .args(["events", "tail", "--follow", "--every", "50ms", "--json"])
        .env("LATCHKEY_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    for kind in ["user_registered", "login_succeeded", "new_device"] {
        assert_eq!(next_json(&mut lines).await["kind"], kind);
    }
    // Recorded after the follower started: printed once each, in order.
    app.register("later@example.com").await;
    let later = next_json(&mut lines).await;
    assert_eq!(
        (later["kind"].as_str(), later["email"].as_str()),
        (Some("user_registered"), Some("later@example.com"))
    );
    app.login_body("first@example.com").await;
    let login = next_json(&mut lines).await;
    assert_eq!(
        (login["kind"].as_str(), login["email"].as_str()),
        (Some("login_succeeded"), Some("first@example.com"))
    );
    child.kill().await.unwrap();
}

#[tokio::test]
async fn webhooks_test_posts_a_signed_message_to_each_endpoint_and_reports_each() {
    let dir = tempfile::tempdir().unwrap();
    let secret_file = dir.path().join("webhook-secret");
    std::fs::write(&secret_file, format!("{SECRET}\n")).unwrap();
    let secret_file = secret_file.to_str().unwrap().to_owned();
    // No database is needed, and none is made.
    let url = url_of(&dir.path().join("unused.db"));
    let good = Receiver::start().await;
    let failing = Receiver::start().await;
    failing.answer(500);
    let gone = Receiver::start().await.stop().await;

    let urls = format!("{},{},{}", good.url(), failing.url(), gone.url());
    let run = latchkey(
        &url,
        &[
            "--webhook-url",
            &urls,
            "--webhook-secret-file",
            &secret_file,
            "webhooks",
            "test",
        ],
    )
    .await;
    run.assert_failed_with("2 endpoint(s) did not accept the test message");
    let rows: Vec<&str> = run.stdout.lines().collect();
    assert_eq!(rows.len(), 4, "{}", run.stdout);
    assert!(rows[1].starts_with(&good.url()) && rows[1].ends_with("delivered (HTTP 200)"));
    assert!(
        rows[2].ends_with("failed: HTTP 500 Internal Server Error"),
        "{}",
        rows[2]
    );
    assert!(rows[3].starts_with(&gone.url()) && rows[3].contains("failed: "));
    for receiver in [&good, &failing] {
        let got = receiver.deliveries();
        assert_eq!(got.len(), 1);
        assert_signed(&got[0]);
        assert_eq!(got[0].kind(), "webhook.test");
    }
    assert_eq!(good.deliveries()[0].id, failing.deliveries()[0].id);
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        1,
        "only the secret file"
    );

    let ok = latchkey(
        &url,
        &[
            "--webhook-url",
            &good.url(),
            "--webhook-secret",
            SECRET,
            "--json",
            "webhooks",
            "test",
        ],
    )
    .await
    .json();
    assert_eq!(ok["deliveries"][0]["delivered"], true);
    assert_eq!(ok["deliveries"][0]["status"], 200);
    assert_eq!(good.deliveries().len(), 2);
}

#[tokio::test]
async fn unsafe_or_incomplete_webhook_settings_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let url = url_of(&dir.path().join("unused.db"));
    let plain = latchkey(
        &url,
        &[
            "--webhook-url",
            "http://hooks.example.com/x",
            "--webhook-secret",
            SECRET,
            "webhooks",
            "test",
        ],
    )
    .await;
    assert!(!plain.success);
    assert!(
        plain.stderr.contains("webhooks go over https://"),
        "{}",
        plain.stderr
    );
    latchkey(
        &url,
        &[
            "--webhook-url",
            "https://hooks.example.com/x",
            "webhooks",
            "test",
        ],
    )
    .await
    .assert_failed_with("LATCHKEY_WEBHOOK_SECRET_FILE");
    latchkey(
        &url,
        &[
            "--webhook-url",
            "https://hooks.example.com/x",
            "--webhook-secret",
            "hunter2",
            "webhooks",
            "test",
        ],
    )
    .await
    .assert_failed_with("whsec_");
    latchkey(&url, &["webhooks", "test"])
        .await
        .assert_failed_with("no webhook endpoint is configured");
}

#[tokio::test]
async fn webhooks_status_lists_what_is_not_delivered() {
    let (_dir, db) = temp_db();
    let stopped = Receiver::start().await.stop().await;
    let args = crate::webhooks::webhook_args(&stopped.url(), "1m");
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let app = spawn_app_on(&db, &args).await;
    app.user_with_session("queued@example.com").await;
    let status = latchkey(&url_of(&db), &["webhooks", "status", "--json"])
        .await
        .json();
    let messages = status["messages"].as_array().unwrap();
    assert_eq!(messages.len(), 1, "{status}");
    assert_eq!(messages[0]["event_type"], "session.new_device");
    assert_eq!(messages[0]["endpoint"], stopped.url());
    assert!(messages[0]["failed_at"].is_null());
    let table = latchkey(&url_of(&db), &["webhooks", "status"]).await;
    assert!(table
        .stdout
        .lines()
        .nth(1)
        .unwrap()
        .contains("session.new_device"));
}
