//! Private signing keys, TOTP secrets and queued mail sealed with a master secret kept
//! outside the database.

use latchkey::Application;
use latchkey_core::email::OUTBOX_CONTEXT;
use latchkey_core::model::UserId;
use latchkey_core::sealing::{DatabaseSealer, KeySealer, MasterSealers};
use latchkey_core::store::{SealedField, Store};
use latchkey_store::testing::TestDatabase;
use latchkey_store::BackendSettings;
use reqwest::StatusCode;

use crate::helpers::{config_for_url, spawn_app_on, spawn_app_with_url, temp_db};
use crate::mail_sink::free_port;
use crate::mfa::{claims, enrol_totp, mfa_token, second_step};

/// The stored private material of every signing key in the database at `db`.
async fn stored_key_material(db: &std::path::Path) -> Vec<Vec<u8>> {
    let url = format!("sqlite://{}", db.display());
    let store = latchkey_store::open(&url, BackendSettings::default())
        .await
        .unwrap();
    let keys = store.signing_keys().await.unwrap();
    keys.into_iter().map(|k| k.private_key).collect()
}

fn is_pkcs8(material: &[u8]) -> bool {
    material.first() == Some(&0x30)
}

async fn start_fails(db: &std::path::Path, extra: &[&str]) -> String {
    start_fails_at(&format!("sqlite://{}", db.display()), extra).await
}

async fn start_fails_at(url: &str, extra: &[&str]) -> String {
    match Application::build(config_for_url(url, extra)).await {
        Ok(_) => panic!("the server started"),
        Err(e) => e.to_string(),
    }
}

#[tokio::test]
async fn keys_are_sealed_and_do_not_open_without_the_secret() {
    let (dir, db) = temp_db();
    let secret_file = dir.path().join("master.secret");
    std::fs::write(
        &secret_file,
        "an outside secret of well over thirty-two bytes\n",
    )
    .unwrap();
    let secret_arg = secret_file.to_str().unwrap();

    // First start without a secret: keys in clear, as before.
    let app = spawn_app_on(&db, &[]).await;
    let before = app.user_with_session("vi@example.com").await;
    app.stop().await;
    assert!(stored_key_material(&db).await.iter().all(|m| is_pkcs8(m)));

    // With the secret, the existing key is sealed; its tokens stay valid.
    let app = spawn_app_on(&db, &["--master-secret-file", secret_arg]).await;
    assert_eq!(app.me(&before.access).await.status(), StatusCode::OK);
    assert_eq!(
        app.refresh_body(&before.refresh).await.status(),
        StatusCode::OK
    );
    let fresh = app.login_body("vi@example.com").await;
    app.stop().await;
    let sealed = stored_key_material(&db).await;
    assert!(!sealed.is_empty());
    assert!(
        sealed.iter().all(|m| m.starts_with(b"lk-sealed-v1:")),
        "sealed at rest"
    );

    // A copy of the database alone does not start a server that could sign.
    let message = start_fails(&db, &[]).await;
    assert!(message.contains("master secret"), "{message}");
    let wrong = dir.path().join("wrong.secret");
    std::fs::write(&wrong, "another secret, also longer than thirty-two bytes").unwrap();
    let message = start_fails(&db, &["--master-secret-file", wrong.to_str().unwrap()]).await;
    assert!(message.contains("master secret"), "{message}");

    // With the right secret everything goes on.
    let app = spawn_app_on(&db, &["--master-secret-file", secret_arg]).await;
    assert_eq!(app.me(&fresh.access).await.status(), StatusCode::OK);
    app.stop().await;
}

#[tokio::test]
async fn a_short_or_missing_secret_stops_start_up() {
    let (dir, db) = temp_db();
    let short = dir.path().join("short.secret");
    std::fs::write(&short, "too short").unwrap();
    let message = start_fails(&db, &["--master-secret-file", short.to_str().unwrap()]).await;
    assert!(message.contains("at least 32 bytes"), "{message}");
    let missing = dir.path().join("missing.secret");
    let message = start_fails(&db, &["--master-secret-file", missing.to_str().unwrap()]).await;
    assert!(message.contains("could not read"), "{message}");
    assert!(!message.contains("too short"));
}

/// What someone with a copy of the database at `url`, and nothing else, reads: the
/// database's own secret, with it the TOTP secret of `user` and the payloads of queued
/// mail, each opened as the server opened them before a master secret was configured.
struct DatabaseCopy {
    store: std::sync::Arc<dyn Store>,
    totp: DatabaseSealer,
    outbox: DatabaseSealer,
}

impl DatabaseCopy {
    async fn open(url: &str) -> Self {
        let store = latchkey_store::open(url, BackendSettings::default())
            .await
            .unwrap();
        let secret = store
            .secret_or_insert("refresh_token_master", &[0u8; 32])
            .await
            .unwrap();
        Self {
            store,
            totp: DatabaseSealer::totp(&secret).unwrap(),
            outbox: DatabaseSealer::mail_outbox(&secret).unwrap(),
        }
    }

    async fn stored_totp(&self, user: UserId) -> Vec<u8> {
        self.store.totp(user).await.unwrap().unwrap().sealed_secret
    }

    async fn queued_payloads(&self) -> Vec<Vec<u8>> {
        let values = self.store.sealed_values().await.unwrap();
        values
            .into_iter()
            .filter(|v| matches!(v.field, SealedField::MailPayload(_)))
            .map(|v| v.sealed)
            .collect()
    }
}

/// A user turns TOTP on while no master secret is configured, with mail queued (the SMTP
/// server is down): a copy of the database opens both. Once the server has started with
/// the master secret, they are sealed under it: the second factor works as before, and a
/// copy of the database opens neither.
async fn totp_secrets_and_queued_mail_move_under_the_master_secret(url: &str) {
    let dir = tempfile::tempdir().unwrap();
    let secret_file = dir.path().join("master.secret");
    let master_secret = "an outside secret of well over thirty-two bytes";
    std::fs::write(&secret_file, format!("{master_secret}\n")).unwrap();
    let dead_smtp = format!("smtp://127.0.0.1:{}", free_port());
    let mail_down = ["--smtp-url", &dead_smtp, "--mail-retry-base", "1h"];
    let email = "sealed@example.com";

    let app = spawn_app_with_url(url, &mail_down).await;
    let tokens = app.user_with_session(email).await;
    let (mut authenticator, _) = enrol_totp(&app, &tokens).await;
    let user: UserId = claims(&tokens.access)["sub"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    app.stop().await;

    let copy = DatabaseCopy::open(url).await;
    let stored = copy.stored_totp(user).await;
    let opened = copy.totp.open(&user.to_string(), &stored).unwrap();
    assert_eq!(opened, authenticator.secret(), "before: the copy reads it");
    let queued = copy.queued_payloads().await;
    assert!(!queued.is_empty(), "the verification mail is queued");
    for payload in &queued {
        assert!(copy.outbox.open(OUTBOX_CONTEXT, payload).is_ok());
    }

    let mut with_secret = vec!["--master-secret-file", secret_file.to_str().unwrap()];
    with_secret.extend_from_slice(&mail_down);
    let app = spawn_app_with_url(url, &with_secret).await;
    let token = mfa_token(&app, email).await;
    let code = authenticator.next_code().await;
    let response = second_step(&app, &token, "code", &code).await;
    assert_eq!(
        response.status(),
        StatusCode::OK,
        "the second factor still works"
    );
    app.stop().await;

    let stored = copy.stored_totp(user).await;
    assert!(KeySealer::is_sealed(&stored));
    assert!(copy.totp.open(&user.to_string(), &stored).is_err());
    let master = MasterSealers::from_secret(master_secret.as_bytes()).unwrap();
    let resealed = copy.queued_payloads().await;
    assert_eq!(resealed.len(), queued.len());
    for payload in &resealed {
        assert!(copy.outbox.open(OUTBOX_CONTEXT, payload).is_err());
        let opened = KeySealer::open(Some(&master.mail_outbox), OUTBOX_CONTEXT, payload);
        assert!(opened.is_ok(), "sealed under the master secret");
    }
    // And a copy of the database does not start a server without the secret.
    let message = start_fails_at(url, &mail_down).await;
    assert!(message.contains("master secret"), "{message}");
}

#[tokio::test]
async fn totp_secrets_and_queued_mail_move_under_the_master_secret_on_sqlite() {
    let (_dir, db) = temp_db();
    let url = format!("sqlite://{}", db.display());
    totp_secrets_and_queued_mail_move_under_the_master_secret(&url).await;
}

#[tokio::test]
async fn totp_secrets_and_queued_mail_move_under_the_master_secret_on_postgres() {
    let Some(db) = TestDatabase::postgres().await else {
        return;
    };
    totp_secrets_and_queued_mail_move_under_the_master_secret(db.url()).await;
}
