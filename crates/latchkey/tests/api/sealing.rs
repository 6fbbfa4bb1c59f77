//! Private signing keys sealed with a master secret kept outside the database.

use latchkey::Application;
use latchkey_store::BackendSettings;
use reqwest::StatusCode;

use crate::helpers::{config_for_url, spawn_app_on, temp_db};

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
    let url = format!("sqlite://{}", db.display());
    match Application::build(config_for_url(&url, extra)).await {
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
