//! Admin management of users over HTTP: disable, roles, delete, sessions, and the rule
//! that the server never loses its last enabled admin.

use reqwest::{Response, StatusCode};
use serde_json::{json, Value};

use crate::accounts::{logged_in, login_from, session_of, CHROME, FIREFOX};
use crate::helpers::{assert_error, spawn_app, TestApp, PASSWORD};

async fn user_id(app: &TestApp, access: &str) -> String {
    let me: Value = app.me(access).await.json().await.unwrap();
    me["user"]["id"].as_str().unwrap().to_owned()
}

async fn patch(app: &TestApp, admin: &str, id: &str, body: &Value) -> Response {
    app.client
        .patch(app.url(&format!("/admin/users/{id}")))
        .bearer_auth(admin)
        .json(body)
        .send()
        .await
        .unwrap()
}

async fn delete(app: &TestApp, admin: &str, path: &str) -> Response {
    app.client
        .delete(app.url(path))
        .bearer_auth(admin)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_disabled_user_is_out_at_once() {
    let app = spawn_app(&[]).await;
    let admin = app.create_admin("root@example.com").await;
    let user = app.user_with_session("hal@example.com").await;
    let id = user_id(&app, &user.access).await;

    let response = patch(&app, &admin.access, &id, &json!({"disabled": true})).await;
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["user"]["disabled"], true);
    assert_error(
        app.me(&user.access).await,
        StatusCode::UNAUTHORIZED,
        "token_revoked",
    )
    .await;
    assert_error(
        app.refresh_body(&user.refresh).await,
        StatusCode::UNAUTHORIZED,
        "session_revoked",
    )
    .await;
    let right = login_from(&app, "hal@example.com", PASSWORD, FIREFOX, None).await;
    assert_error(right, StatusCode::FORBIDDEN, "account_disabled").await;
    let wrong = login_from(&app, "hal@example.com", "a wrong password", FIREFOX, None).await;
    assert_error(wrong, StatusCode::UNAUTHORIZED, "invalid_credentials").await;

    let enabled = patch(&app, &admin.access, &id, &json!({"disabled": false})).await;
    assert_eq!(enabled.status(), StatusCode::OK);
    let again = login_from(&app, "hal@example.com", PASSWORD, FIREFOX, None).await;
    assert_eq!(again.status(), StatusCode::OK);

    let log = app
        .get_json(
            &format!("/admin/security-events?user_id={id}"),
            &admin.access,
        )
        .await;
    let kinds: Vec<&str> = log["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert!(
        kinds.contains(&"user_disabled") && kinds.contains(&"user_enabled"),
        "{kinds:?}"
    );
}

#[tokio::test]
async fn a_removed_role_is_gone_at_once_and_an_added_one_comes_at_refresh() {
    let app = spawn_app(&[]).await;
    let admin = app.create_admin("root@example.com").await;
    let user = app.user_with_session("ivy@example.com").await;
    let id = user_id(&app, &user.access).await;

    let added = patch(
        &app,
        &admin.access,
        &id,
        &json!({"roles": ["user", "editor"]}),
    )
    .await;
    assert_eq!(added.status(), StatusCode::OK);
    // The session goes on; the next refresh carries the new role.
    let refreshed: Value = app.refresh_body(&user.refresh).await.json().await.unwrap();
    let access = refreshed["access_token"].as_str().unwrap();
    let me: Value = app.me(access).await.json().await.unwrap();
    assert_eq!(me["user"]["roles"], json!(["editor", "user"]));

    let removed = patch(&app, &admin.access, &id, &json!({"roles": ["user"]})).await;
    assert_eq!(removed.status(), StatusCode::OK);
    assert_error(
        app.me(access).await,
        StatusCode::UNAUTHORIZED,
        "token_revoked",
    )
    .await;
    let refresh = refreshed["refresh_token"].as_str().unwrap();
    assert_error(
        app.refresh_body(refresh).await,
        StatusCode::UNAUTHORIZED,
        "session_revoked",
    )
    .await;
    let fresh = logged_in(&app, "ivy@example.com", CHROME).await;
    let me: Value = app.me(&fresh.access).await.json().await.unwrap();
    assert_eq!(me["user"]["roles"], json!(["user"]));

    let bad_role = patch(&app, &admin.access, &id, &json!({"roles": ["Not A Role"]})).await;
    assert_error(bad_role, StatusCode::BAD_REQUEST, "role_invalid").await;
    let unknown_field = patch(&app, &admin.access, &id, &json!({"rolez": []})).await;
    assert_error(unknown_field, StatusCode::BAD_REQUEST, "invalid_request").await;
}

#[tokio::test]
async fn the_last_admin_cannot_leave() {
    let app = spawn_app(&[]).await;
    let root = app.create_admin("root@example.com").await;
    let root_id = user_id(&app, &root.access).await;
    for body in [json!({"roles": ["user"]}), json!({"disabled": true})] {
        let response = patch(&app, &root.access, &root_id, &body).await;
        assert_error(response, StatusCode::CONFLICT, "last_admin").await;
    }
    let response = delete(&app, &root.access, &format!("/admin/users/{root_id}")).await;
    assert_error(response, StatusCode::CONFLICT, "last_admin").await;
    assert_eq!(app.me(&root.access).await.status(), StatusCode::OK);

    // With a second admin, the first may step down (and its sessions end with it).
    let second = app.create_admin("second@example.com").await;
    let response = patch(&app, &root.access, &root_id, &json!({"roles": ["user"]})).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_error(
        app.me(&root.access).await,
        StatusCode::UNAUTHORIZED,
        "token_revoked",
    )
    .await;
    let second_id = user_id(&app, &second.access).await;
    let response = delete(&app, &second.access, &format!("/admin/users/{second_id}")).await;
    assert_error(response, StatusCode::CONFLICT, "last_admin").await;
}

#[tokio::test]
async fn admins_see_and_end_a_users_sessions_and_delete_users() {
    let app = spawn_app(&[]).await;
    let admin = app.create_admin("root@example.com").await;
    app.register("jo@example.com").await;
    let a = logged_in(&app, "jo@example.com", FIREFOX).await;
    let b = logged_in(&app, "jo@example.com", CHROME).await;
    let id = user_id(&app, &a.access).await;

    let shown = app
        .get_json(&format!("/admin/users/{id}"), &admin.access)
        .await;
    assert_eq!(shown["user"]["email"], "jo@example.com");
    assert_eq!(shown["user"]["disabled"], false);
    assert!(shown["user"]["created_at"].as_str().unwrap().ends_with('Z'));
    assert_eq!(shown["sessions"].as_array().unwrap().len(), 2);
    let listed = app
        .get_json(&format!("/admin/users/{id}/sessions"), &admin.access)
        .await;
    let ids: Vec<&str> = listed["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        [
            session_of(&app, &b.access).await,
            session_of(&app, &a.access).await
        ]
    );

    let ended = delete(&app, &admin.access, &format!("/admin/users/{id}/sessions")).await;
    assert_eq!(ended.status(), StatusCode::OK);
    assert_eq!(ended.json::<Value>().await.unwrap()["revoked"], 2);
    for gone in [&a, &b] {
        assert_error(
            app.me(&gone.access).await,
            StatusCode::UNAUTHORIZED,
            "token_revoked",
        )
        .await;
    }

    let c = logged_in(&app, "jo@example.com", FIREFOX).await;
    let deleted = delete(&app, &admin.access, &format!("/admin/users/{id}")).await;
    assert_eq!(deleted.status(), StatusCode::NO_CONTENT);
    assert_error(
        app.me(&c.access).await,
        StatusCode::UNAUTHORIZED,
        "token_revoked",
    )
    .await;
    assert_error(
        app.refresh_body(&c.refresh).await,
        StatusCode::UNAUTHORIZED,
        "refresh_token_invalid",
    )
    .await;
    let gone = app
        .client
        .get(app.url(&format!("/admin/users/{id}")))
        .bearer_auth(&admin.access)
        .send()
        .await
        .unwrap();
    assert_error(gone, StatusCode::NOT_FOUND, "user_not_found").await;
    // The audit log keeps the user id.
    let log = app
        .get_json(
            &format!("/admin/security-events?user_id={id}"),
            &admin.access,
        )
        .await;
    assert!(log["events"]
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e["kind"] == "user_deleted"));
    // The address can register again, as a new user.
    assert_eq!(
        app.register("jo@example.com").await.status(),
        StatusCode::CREATED
    );
}

#[tokio::test]
async fn admin_user_routes_refuse_non_admins_and_bad_ids() {
    let app = spawn_app(&[]).await;
    let admin = app.create_admin("root@example.com").await;
    let user = app.user_with_session("kit@example.com").await;
    let id = user_id(&app, &user.access).await;
    let routes = [
        ("GET", format!("/admin/users/{id}")),
        ("PATCH", format!("/admin/users/{id}")),
        ("DELETE", format!("/admin/users/{id}")),
        ("GET", format!("/admin/users/{id}/sessions")),
        ("DELETE", format!("/admin/users/{id}/sessions")),
    ];
    for (method, path) in &routes {
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let response = app
            .client
            .request(method.clone(), app.url(path))
            .bearer_auth(&user.access)
            .json(&json!({}))
            .send()
            .await
            .unwrap();
        assert_error(response, StatusCode::FORBIDDEN, "insufficient_role").await;
        let anonymous = app
            .client
            .request(method, app.url(path))
            .send()
            .await
            .unwrap();
        assert_error(anonymous, StatusCode::UNAUTHORIZED, "token_missing").await;
    }
    for bad in ["not-a-uuid", "00000000-0000-4000-8000-000000000000"] {
        let response = app
            .client
            .get(app.url(&format!("/admin/users/{bad}")))
            .bearer_auth(&admin.access)
            .send()
            .await
            .unwrap();
        assert_error(response, StatusCode::NOT_FOUND, "user_not_found").await;
    }
    for path in [
        "/admin/users?limit=abc",
        "/admin/users?limit=0",
        "/admin/users?limit=501",
        "/admin/security-events?limit=x",
        "/admin/security-events?limit=1001",
    ] {
        let response = app
            .client
            .get(app.url(path))
            .bearer_auth(&admin.access)
            .send()
            .await
            .unwrap();
        assert_error(response, StatusCode::BAD_REQUEST, "invalid_request").await;
    }
    assert_eq!(app.me(&user.access).await.status(), StatusCode::OK);
}
