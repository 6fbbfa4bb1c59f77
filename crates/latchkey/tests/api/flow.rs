use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::*;

#[tokio::test]
async fn register_login_me_refresh_logout() {
    let app = spawn_app(&[]).await;
    let response = app.register("  Ada@Example.COM ").await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let user: Value = response.json().await.unwrap();
    assert_eq!(user["email"], "ada@example.com");
    assert_eq!(user["roles"], json!(["user"]));

    let response = app
        .post_json(
            "/auth/login",
            &json!({"email": "ada@example.com", "password": PASSWORD, "refresh_delivery": "body"}),
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["cache-control"], "no-store");
    assert!(
        response.headers().get("set-cookie").is_none(),
        "body delivery sets no cookie"
    );
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 900);
    let tokens = Tokens::from(body);

    let me: Value = app.me(&tokens.access).await.json().await.unwrap();
    assert_eq!(me["user"]["id"], user["id"]);
    assert_eq!(me["user"]["roles"], json!(["user"]));
    let sid = me["session"]["id"].as_str().unwrap().to_owned();

    let response = app.refresh_body(&tokens.refresh).await;
    assert_eq!(response.status(), StatusCode::OK);
    let next = Tokens::from(response.json::<Value>().await.unwrap());
    assert_ne!(next.refresh, tokens.refresh);
    let me: Value = app.me(&next.access).await.json().await.unwrap();
    assert_eq!(
        me["session"]["id"],
        sid.as_str(),
        "refresh keeps the session"
    );

    let response = app
        .client
        .post(app.url("/auth/logout"))
        .bearer_auth(&next.access)
        .json(&json!({ "refresh_token": next.refresh }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    assert_error(
        app.me(&next.access).await,
        StatusCode::UNAUTHORIZED,
        "token_revoked",
    )
    .await;
    assert_error(
        app.me(&tokens.access).await,
        StatusCode::UNAUTHORIZED,
        "token_revoked",
    )
    .await;
    assert_error(
        app.refresh_body(&next.refresh).await,
        StatusCode::UNAUTHORIZED,
        "session_revoked",
    )
    .await;

    // Logout is idempotent.
    let again = app
        .client
        .post(app.url("/auth/logout"))
        .json(&json!({ "refresh_token": next.refresh }))
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), StatusCode::NO_CONTENT);
}

#[tokio::test]
async fn logout_with_only_the_access_token_ends_the_session() {
    let app = spawn_app(&[]).await;
    let tokens = app.user_with_session("bo@example.com").await;
    let response = app
        .client
        .post(app.url("/auth/logout"))
        .bearer_auth(&tokens.access)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    assert_error(
        app.me(&tokens.access).await,
        StatusCode::UNAUTHORIZED,
        "token_revoked",
    )
    .await;
    assert_error(
        app.refresh_body(&tokens.refresh).await,
        StatusCode::UNAUTHORIZED,
        "session_revoked",
    )
    .await;
}

#[tokio::test]
async fn credentials_errors_are_uniform() {
    // (A second registration of an address: see `registration`.)
    let app = spawn_app(&[]).await;
    assert_eq!(
        app.register("cy@example.com").await.status(),
        StatusCode::CREATED
    );

    let wrong_password = app
        .post_json(
            "/auth/login",
            &json!({"email": "cy@example.com", "password": "not the password"}),
        )
        .await;
    let unknown_user = app
        .post_json(
            "/auth/login",
            &json!({"email": "nobody@example.com", "password": "not the password"}),
        )
        .await;
    let a = assert_error(
        wrong_password,
        StatusCode::UNAUTHORIZED,
        "invalid_credentials",
    )
    .await;
    let b = assert_error(
        unknown_user,
        StatusCode::UNAUTHORIZED,
        "invalid_credentials",
    )
    .await;
    assert_eq!(a, b, "unknown user and wrong password answer alike");
}

#[tokio::test]
async fn admin_routes_need_the_admin_role() {
    let app = spawn_app(&[]).await;
    let user = app.user_with_session("dee@example.com").await;
    let response = app
        .client
        .get(app.url("/admin/users"))
        .bearer_auth(&user.access)
        .send()
        .await
        .unwrap();
    assert_error(response, StatusCode::FORBIDDEN, "insufficient_role").await;
    let response = app
        .client
        .get(app.url("/admin/users"))
        .send()
        .await
        .unwrap();
    assert_error(response, StatusCode::UNAUTHORIZED, "token_missing").await;

    let admin = app.create_admin("root@example.com").await;
    let response = app
        .client
        .get(app.url("/admin/users"))
        .bearer_auth(&admin.access)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    let emails = strings(&body["users"], "email");
    assert_eq!(emails, ["dee@example.com", "root@example.com"]);
    assert!(body["users"][0].get("password_hash").is_none());
}

#[tokio::test]
async fn login_events_are_audited() {
    let app = spawn_app(&[]).await;
    app.user_with_session("eve@example.com").await;
    let _ = app
        .post_json(
            "/auth/login",
            &json!({"email": "eve@example.com", "password": "wrong password"}),
        )
        .await;
    let admin = app.create_admin("root@example.com").await;
    let body = app.get_json("/admin/security-events", &admin.access).await;
    let kinds = strings(&body["events"], "kind");
    for kind in ["user_registered", "login_succeeded", "login_failed"] {
        assert!(
            kinds.iter().any(|k| k == kind),
            "{kind} missing from {kinds:?}"
        );
    }
    let text = body.to_string();
    assert!(
        !text.contains(PASSWORD) && !text.contains("wrong password"),
        "no passwords in the audit log"
    );
    assert!(body["events"][0]["client_ip"]
        .as_str()
        .is_some_and(|ip| ip == "127.0.0.1"));
}

#[tokio::test]
async fn health_and_readiness() {
    let app = spawn_app(&[]).await;
    let response = app.client.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let response = app.client.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_error(
        app.client.get(app.url("/nope")).send().await.unwrap(),
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
}
