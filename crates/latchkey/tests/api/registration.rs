//! Registration does not tell which addresses have accounts (the default,
//! `LATCHKEY_REGISTRATION_ENUMERATION=false`): a taken address is answered exactly as a
//! fresh one, with the same work, and its owner is mailed instead (through a real SMTP
//! server, see `mail_sink`). With enumeration on, it is 409 `email_taken`.

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::email::{login_status, mail_setup};
use crate::helpers::*;
use crate::mail_sink::{delivered, wait_for};

const NOTICE: &str = "Someone tried to create an account with your address";
const INTRUDER_PASSWORD: &str = "an intruder's own long passphrase";

async fn register_with(app: &TestApp, email: &str, password: &str) -> (StatusCode, Value) {
    let response = app
        .post_json(
            "/auth/register",
            &json!({ "email": email, "password": password }),
        )
        .await;
    (response.status(), response.json().await.unwrap())
}

/// Password hashes done so far: the count of the hashing queue's wait histogram (one
/// observation per hash).
async fn hashes(app: &TestApp) -> u64 {
    let text = app
        .client
        .get(app.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix("latchkey_password_hash_wait_seconds_count "))
        .map_or(0, |v| v.trim().parse().unwrap())
}

#[tokio::test]
async fn a_taken_address_is_answered_as_a_fresh_one_and_its_owner_is_mailed() {
    let Some((dir, sink, app)) = mail_setup(&[]).await else {
        return;
    };
    let owner = "owner@example.com";
    let before = hashes(&app).await;
    let (fresh_status, fresh) = register_with(&app, owner, PASSWORD).await;
    let after_fresh = hashes(&app).await;
    let (taken_status, taken) = register_with(&app, "Owner@Example.com", INTRUDER_PASSWORD).await;
    let after_taken = hashes(&app).await;

    // The same status and body, but for the id (never stored); one hash each.
    assert_eq!(fresh_status, StatusCode::CREATED);
    assert_eq!(taken_status, fresh_status);
    let keys = |body: &Value| {
        let mut keys: Vec<String> = body.as_object().unwrap().keys().cloned().collect();
        keys.sort();
        keys
    };
    assert_eq!(keys(&taken), keys(&fresh));
    assert_eq!(taken["email"], fresh["email"]);
    assert_eq!(taken["roles"], fresh["roles"]);
    assert_ne!(taken["id"], fresh["id"]);
    assert!(taken["id"].as_str().unwrap().parse::<uuid::Uuid>().is_ok());
    assert_eq!((after_fresh - before, after_taken - after_fresh), (1, 1));

    // The owner is told, with where to sign in or reset; nothing else changed.
    let notice = wait_for(dir.path(), owner, NOTICE, 1).await.remove(0);
    assert!(
        notice.text.contains("https://app.test/reset"),
        "{}",
        notice.text
    );
    assert!(notice.html.contains("app.test"), "{}", notice.html);
    assert_eq!(
        delivered(dir.path(), owner, "Confirm your e-mail address").len(),
        1
    );
    let intruder = login_status(&app, owner, INTRUDER_PASSWORD).await;
    assert_error(intruder, StatusCode::UNAUTHORIZED, "invalid_credentials").await;
    let tokens = app.login_body(owner).await;
    let events = app.get_json("/auth/events", &tokens.access).await;
    let kinds = strings(&events["events"], "kind");
    assert!(
        kinds.contains(&"registration_attempted".to_owned()),
        "{kinds:?}"
    );

    // Another attempt soon after is answered the same and recorded, but mails nobody
    // again (one notice per address per 15 minutes). The worker sends in queue order:
    // once a later mail is there, a second notice would have been too.
    let (again, _) = register_with(&app, owner, INTRUDER_PASSWORD).await;
    assert_eq!(again, StatusCode::CREATED);
    let (later, _) = register_with(&app, "later@example.com", PASSWORD).await;
    assert_eq!(later, StatusCode::CREATED);
    wait_for(
        dir.path(),
        "later@example.com",
        "Confirm your e-mail address",
        1,
    )
    .await;
    assert_eq!(delivered(dir.path(), owner, NOTICE).len(), 1);
    let events = app.get_json("/auth/events", &tokens.access).await;
    let attempts = strings(&events["events"], "kind")
        .into_iter()
        .filter(|k| k == "registration_attempted")
        .count();
    assert_eq!(attempts, 2);
    sink.stop().await;
}

#[tokio::test]
async fn with_enumeration_on_a_taken_address_is_409_before_any_hashing() {
    let app = spawn_app(&["--registration-enumeration", "true"]).await;
    assert_eq!(
        app.register("cy@example.com").await.status(),
        StatusCode::CREATED
    );
    let before = hashes(&app).await;
    assert_error(
        app.register("CY@example.com").await,
        StatusCode::CONFLICT,
        "email_taken",
    )
    .await;
    assert_eq!(hashes(&app).await, before);
}
