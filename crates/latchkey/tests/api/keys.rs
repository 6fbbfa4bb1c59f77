use std::process::Stdio;

use reqwest::StatusCode;
use serde_json::Value;
use tokio::io::AsyncWriteExt;

use crate::helpers::*;

pub async fn jwks_kids(app: &TestApp) -> Vec<String> {
    let jwks: Value = app
        .client
        .get(app.url("/.well-known/jwks.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn key_rotation_keeps_old_tokens_valid() {
    let app = spawn_app(&[]).await;
    let admin = app.create_admin("root@example.com").await;
    let user = app.user_with_session("tia@example.com").await;
    let before = jwks_kids(&app).await;
    assert_eq!(before.len(), 1);

    let response = app
        .client
        .post(app.url("/admin/keys/rotate"))
        .bearer_auth(&admin.access)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let new_kid = response.json::<Value>().await.unwrap()["kid"]
        .as_str()
        .unwrap()
        .to_owned();
    let after = jwks_kids(&app).await;
    assert_eq!(after.len(), 2);
    assert!(after.contains(&before[0]) && after.contains(&new_kid));

    assert_eq!(
        app.me(&user.access).await.status(),
        StatusCode::OK,
        "tokens of the old key still work"
    );
    let refreshed = Tokens::from(
        app.refresh_body(&user.refresh)
            .await
            .json::<Value>()
            .await
            .unwrap(),
    );
    let header: Value = serde_json::from_slice(
        &base64::Engine::decode(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD,
            refreshed.access.split('.').next().unwrap(),
        )
        .unwrap(),
    )
    .unwrap();
    assert_eq!(
        header["kid"],
        new_kid.as_str(),
        "new tokens use the new key"
    );
    assert_eq!(app.me(&refreshed.access).await.status(), StatusCode::OK);
}

fn cli(db: &std::path::Path, args: &[&str]) -> tokio::process::Command {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_latchkey"));
    command
        .args(["--database-url", &format!("sqlite://{}", db.display())])
        .args(args)
        .env("LATCHKEY_LOG", "warn")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    command
}

#[tokio::test]
async fn a_restart_keeps_users_sessions_keys_and_revocations() {
    let (_dir, db) = temp_db();
    let app = spawn_app_on(&db, &[]).await;
    let kept = app.user_with_session("uma@example.com").await;
    let revoked = app.login_body("uma@example.com").await;
    let response = app
        .client
        .post(app.url("/auth/logout"))
        .bearer_auth(&revoked.access)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    let kids = jwks_kids(&app).await;
    app.stop().await;

    // Between the runs, the CLI rotates the keys on the same database.
    let output = cli(&db, &["keys", "rotate"]).output().await.unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let listed = cli(&db, &["keys", "list"]).output().await.unwrap();
    let listing = String::from_utf8(listed.stdout).unwrap();
    // A header line, then one line per key.
    assert_eq!(listing.lines().count(), 3, "{listing}");
    assert!(
        !listing.contains("BEGIN") && listing.lines().filter(|l| l.contains("active")).count() == 1
    );

    let app = spawn_app_on(&db, &[]).await;
    let after = jwks_kids(&app).await;
    assert!(
        after.contains(&kids[0]) && after.len() == 2,
        "old key kept for verification"
    );
    assert_eq!(
        app.me(&kept.access).await.status(),
        StatusCode::OK,
        "access token from before the restart"
    );
    assert_error(
        app.me(&revoked.access).await,
        StatusCode::UNAUTHORIZED,
        "token_revoked",
    )
    .await;
    assert_eq!(
        app.refresh_body(&kept.refresh).await.status(),
        StatusCode::OK,
        "session survives"
    );
    assert!(
        !app.login_body("uma@example.com").await.access.is_empty(),
        "user survives"
    );
}

#[tokio::test]
async fn cli_adds_an_admin_that_can_log_in() {
    let (_dir, db) = temp_db();
    let mut child = cli(
        &db,
        &[
            "user",
            "add",
            "--email",
            "Vic@Example.com",
            "--role",
            "admin",
        ],
    )
    .spawn()
    .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(format!("{PASSWORD}\n").as_bytes())
        .await
        .unwrap();
    let output = child.wait_with_output().await.unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(!String::from_utf8_lossy(&output.stdout).contains(PASSWORD));

    let app = spawn_app_on(&db, &[]).await;
    let admin = app.login_body("vic@example.com").await;
    let response = app
        .client
        .get(app.url("/admin/users"))
        .bearer_auth(&admin.access)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
}

#[tokio::test]
async fn unsafe_settings_stop_start_up() {
    let (_dir, db) = temp_db();
    let output = cli(&db, &["--algorithm", "HS256", "migrate"])
        .env("LATCHKEY_HS256_SECRET", "too short")
        .output()
        .await
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("LATCHKEY_HS256_SECRET") && stderr.contains("32 bytes"),
        "{stderr}"
    );
    assert!(
        !stderr.contains("too short"),
        "the secret itself is never printed"
    );
}

#[tokio::test]
async fn every_algorithm_issues_tokens_the_server_accepts() {
    for algorithm in ["ES256", "RS256", "HS256"] {
        let app = spawn_app(&["--algorithm", algorithm]).await;
        let tokens = app.user_with_session("wes@example.com").await;
        assert_eq!(
            app.me(&tokens.access).await.status(),
            StatusCode::OK,
            "{algorithm}"
        );
        let kids = jwks_kids(&app).await;
        assert_eq!(
            kids.len(),
            usize::from(algorithm != "HS256"),
            "{algorithm}: HS256 keys are never published"
        );
    }
}
