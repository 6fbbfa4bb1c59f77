//! Accounts over HTTP: sessions per device, revoking one or all, password changes,
//! the caller's events, and new-device tracking.

use reqwest::{Response, StatusCode};
use serde_json::{json, Value};

use crate::helpers::{assert_error, spawn_app, TestApp, Tokens, PASSWORD};

pub const FIREFOX: &str = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0";
pub const CHROME: &str = "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) \
    AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36";

/// Log in as a native client with this `User-Agent`, from `forwarded_for` when the app
/// trusts one proxy hop (`--trusted-proxies 1`).
pub async fn login_from(
    app: &TestApp,
    email: &str,
    password: &str,
    user_agent: &str,
    forwarded_for: Option<&str>,
) -> Response {
    let mut request = app
        .client
        .post(app.url("/auth/login"))
        .header("user-agent", user_agent)
        .json(&json!({ "email": email, "password": password, "refresh_delivery": "body" }));
    if let Some(ip) = forwarded_for {
        request = request.header("x-forwarded-for", ip);
    }
    request.send().await.unwrap()
}

pub async fn logged_in(app: &TestApp, email: &str, user_agent: &str) -> Tokens {
    let response = login_from(app, email, PASSWORD, user_agent, None).await;
    assert_eq!(response.status(), StatusCode::OK);
    Tokens::from(response.json::<Value>().await.unwrap())
}

/// The session id (`sid`) of an access token, as `/auth/me` tells it.
pub async fn session_of(app: &TestApp, access: &str) -> String {
    let me: Value = app.me(access).await.json().await.unwrap();
    me["session"]["id"].as_str().unwrap().to_owned()
}

async fn sessions(app: &TestApp, access: &str) -> Vec<Value> {
    let body = app.get_json("/auth/sessions", access).await;
    body["sessions"].as_array().unwrap().clone()
}

async fn delete(app: &TestApp, path: &str, access: &str) -> Response {
    app.client
        .delete(app.url(path))
        .bearer_auth(access)
        .send()
        .await
        .unwrap()
}

async fn post_authed(app: &TestApp, path: &str, access: &str, body: &Value) -> Response {
    app.client
        .post(app.url(path))
        .bearer_auth(access)
        .json(body)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn two_devices_list_as_two_sessions() {
    let app = spawn_app(&[]).await;
    assert_eq!(
        app.register("ada@example.com").await.status(),
        StatusCode::CREATED
    );
    let laptop = logged_in(&app, "ada@example.com", FIREFOX).await;
    let phone = logged_in(&app, "ada@example.com", CHROME).await;

    let listed = sessions(&app, &laptop.access).await;
    assert_eq!(listed.len(), 2, "{listed:?}");
    // Newest first.
    assert_eq!(
        listed[0]["id"],
        session_of(&app, &phone.access).await.as_str()
    );
    assert_eq!(listed[0]["device"], "Chrome on Mac OSX");
    assert_eq!(listed[0]["current"], false);
    assert_eq!(
        listed[1]["id"],
        session_of(&app, &laptop.access).await.as_str()
    );
    assert_eq!(listed[1]["device"], "Firefox on Linux");
    assert_eq!(listed[1]["current"], true);
    assert_eq!(listed[1]["ip"], "127.0.0.1");
    assert_eq!(listed[1]["user_agent"], FIREFOX);
    for session in &listed {
        for time in ["created_at", "last_used_at"] {
            let text = session[time].as_str().unwrap();
            assert!(text.ends_with('Z') && text.contains('T'), "{time}: {text}");
        }
    }
    // The other device sees the same list with itself as current.
    let from_phone = sessions(&app, &phone.access).await;
    assert_eq!(from_phone[0]["current"], true);
    assert_eq!(from_phone[1]["current"], false);
}

#[tokio::test]
async fn revoking_another_session_ends_it_at_once() {
    let app = spawn_app(&[]).await;
    app.register("bo@example.com").await;
    let laptop = logged_in(&app, "bo@example.com", FIREFOX).await;
    let stolen = logged_in(&app, "bo@example.com", CHROME).await;
    let stolen_sid = session_of(&app, &stolen.access).await;

    let response = delete(
        &app,
        &format!("/auth/sessions/{stolen_sid}"),
        &laptop.access,
    )
    .await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    assert_error(
        app.me(&stolen.access).await,
        StatusCode::UNAUTHORIZED,
        "token_revoked",
    )
    .await;
    assert_error(
        app.refresh_body(&stolen.refresh).await,
        StatusCode::UNAUTHORIZED,
        "session_revoked",
    )
    .await;
    assert_eq!(app.me(&laptop.access).await.status(), StatusCode::OK);
    assert_eq!(sessions(&app, &laptop.access).await.len(), 1);

    // Again, unknown, malformed, someone else's: all the same 404.
    app.register("cy@example.com").await;
    let other = logged_in(&app, "cy@example.com", FIREFOX).await;
    let others_sid = session_of(&app, &other.access).await;
    for id in [
        stolen_sid.as_str(),
        "2f1d4a7e-0000-4000-8000-000000000000",
        "not-a-uuid",
        others_sid.as_str(),
    ] {
        let response = delete(&app, &format!("/auth/sessions/{id}"), &laptop.access).await;
        assert_error(response, StatusCode::NOT_FOUND, "session_not_found").await;
    }
    assert_eq!(app.me(&other.access).await.status(), StatusCode::OK);
    let anonymous = app
        .client
        .delete(app.url(&format!("/auth/sessions/{others_sid}")))
        .send()
        .await
        .unwrap();
    assert_error(anonymous, StatusCode::UNAUTHORIZED, "token_missing").await;
}

#[tokio::test]
async fn logout_all_with_and_without_keeping_the_current_session() {
    let app = spawn_app(&[]).await;
    app.register("di@example.com").await;
    let a = logged_in(&app, "di@example.com", FIREFOX).await;
    let b = logged_in(&app, "di@example.com", CHROME).await;
    let c = logged_in(&app, "di@example.com", FIREFOX).await;

    let keep = post_authed(
        &app,
        "/auth/logout-all",
        &a.access,
        &json!({"keep_current": true}),
    )
    .await;
    assert_eq!(keep.status(), StatusCode::NO_CONTENT);
    assert_eq!(app.me(&a.access).await.status(), StatusCode::OK);
    for gone in [&b, &c] {
        assert_error(
            app.me(&gone.access).await,
            StatusCode::UNAUTHORIZED,
            "token_revoked",
        )
        .await;
        assert_error(
            app.refresh_body(&gone.refresh).await,
            StatusCode::UNAUTHORIZED,
            "session_revoked",
        )
        .await;
    }
    assert_eq!(app.refresh_body(&a.refresh).await.status(), StatusCode::OK);

    let d = logged_in(&app, "di@example.com", CHROME).await;
    let all = post_authed(
        &app,
        "/auth/logout-all",
        &d.access,
        &json!({"keep_current": false}),
    )
    .await;
    assert_eq!(all.status(), StatusCode::NO_CONTENT);
    for gone in [&a, &d] {
        assert_error(
            app.me(&gone.access).await,
            StatusCode::UNAUTHORIZED,
            "token_revoked",
        )
        .await;
    }
    let malformed = post_authed(
        &app,
        "/auth/logout-all",
        &d.access,
        &json!({"keep_current": "yes"}),
    )
    .await;
    assert_error(malformed, StatusCode::UNAUTHORIZED, "token_revoked").await;
    let fresh = logged_in(&app, "di@example.com", CHROME).await;
    let malformed = post_authed(
        &app,
        "/auth/logout-all",
        &fresh.access,
        &json!({"keep_current": "yes"}),
    )
    .await;
    assert_error(malformed, StatusCode::BAD_REQUEST, "invalid_request").await;
}

#[tokio::test]
async fn a_password_change_keeps_only_the_current_session() {
    let app = spawn_app(&[]).await;
    app.register("ed@example.com").await;
    let here = logged_in(&app, "ed@example.com", FIREFOX).await;
    let elsewhere = logged_in(&app, "ed@example.com", CHROME).await;
    let new_password = "a different long passphrase";

    let wrong = post_authed(
        &app,
        "/auth/password",
        &here.access,
        &json!({"current_password": "not my password", "new_password": new_password}),
    )
    .await;
    assert_error(wrong, StatusCode::UNAUTHORIZED, "invalid_credentials").await;
    let weak = post_authed(
        &app,
        "/auth/password",
        &here.access,
        &json!({"current_password": PASSWORD, "new_password": "short"}),
    )
    .await;
    assert_error(weak, StatusCode::BAD_REQUEST, "password_too_short").await;
    assert_eq!(app.me(&elsewhere.access).await.status(), StatusCode::OK);

    let changed = post_authed(
        &app,
        "/auth/password",
        &here.access,
        &json!({"current_password": PASSWORD, "new_password": new_password}),
    )
    .await;
    assert_eq!(changed.status(), StatusCode::NO_CONTENT);
    assert_eq!(app.me(&here.access).await.status(), StatusCode::OK);
    assert_eq!(
        app.refresh_body(&here.refresh).await.status(),
        StatusCode::OK
    );
    assert_error(
        app.me(&elsewhere.access).await,
        StatusCode::UNAUTHORIZED,
        "token_revoked",
    )
    .await;
    assert_error(
        app.refresh_body(&elsewhere.refresh).await,
        StatusCode::UNAUTHORIZED,
        "session_revoked",
    )
    .await;
    let old = login_from(&app, "ed@example.com", PASSWORD, FIREFOX, None).await;
    assert_error(old, StatusCode::UNAUTHORIZED, "invalid_credentials").await;
    let new = login_from(&app, "ed@example.com", new_password, FIREFOX, None).await;
    assert_eq!(new.status(), StatusCode::OK);

    let events = app.get_json("/auth/events", &here.access).await;
    let kinds: Vec<&str> = events["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert!(kinds.contains(&"password_changed"), "{kinds:?}");
    assert!(kinds.contains(&"session_revoked"), "{kinds:?}");
}

#[tokio::test]
async fn a_new_device_is_recorded_once() {
    let app = spawn_app(&["--trusted-proxies", "1"]).await;
    app.register("fa@example.com").await;
    let home = Some("198.51.100.7");
    let home_again = Some("198.51.100.200");
    let cafe = Some("203.0.113.50");
    for (agent, from) in [
        (FIREFOX, home),
        (FIREFOX, home_again),
        (FIREFOX, home),
        (CHROME, home),
        (FIREFOX, cafe),
        (FIREFOX, cafe),
    ] {
        let response = login_from(&app, "fa@example.com", PASSWORD, agent, from).await;
        assert_eq!(response.status(), StatusCode::OK);
    }
    let tokens = logged_in(&app, "fa@example.com", CHROME).await; // from 127.0.0.1: new
    let events = app.get_json("/auth/events?limit=100", &tokens.access).await;
    let new_devices: Vec<(String, String)> = events["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "new_device")
        .map(|e| {
            (
                e["device"].as_str().unwrap().to_owned(),
                e["client_ip"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let expected: Vec<(String, String)> = [
        ("Chrome on Mac OSX", "127.0.0.1"),
        ("Firefox on Linux", "203.0.113.50"),
        ("Chrome on Mac OSX", "198.51.100.7"),
        ("Firefox on Linux", "198.51.100.7"),
    ]
    .iter()
    .map(|(d, ip)| ((*d).to_owned(), (*ip).to_owned()))
    .collect();
    assert_eq!(new_devices, expected);
    let sign_ins = events["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "login_succeeded")
        .count();
    assert_eq!(sign_ins, 7);
}

#[tokio::test]
async fn account_routes_need_a_valid_token_and_good_input() {
    let app = spawn_app(&[]).await;
    let tokens = app.user_with_session("gu@example.com").await;
    for (method, path) in [
        ("GET", "/auth/sessions"),
        ("DELETE", "/auth/sessions/x"),
        ("POST", "/auth/logout-all"),
        ("POST", "/auth/password"),
        ("GET", "/auth/events"),
    ] {
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let bare = app
            .client
            .request(method.clone(), app.url(path))
            .send()
            .await
            .unwrap();
        assert_error(bare, StatusCode::UNAUTHORIZED, "token_missing").await;
        let forged = app
            .client
            .request(method, app.url(path))
            .bearer_auth("not.a.token")
            .send()
            .await
            .unwrap();
        assert_eq!(forged.status(), StatusCode::UNAUTHORIZED, "{path}");
    }
    // A limit that is not a number, or outside 1 to 200, is refused rather than cut.
    for limit in ["many", "0", "201", "-1"] {
        let response = app
            .client
            .get(app.url(&format!("/auth/events?limit={limit}")))
            .bearer_auth(&tokens.access)
            .send()
            .await
            .unwrap();
        assert_error(response, StatusCode::BAD_REQUEST, "invalid_request").await;
    }
    let most = app.get_json("/auth/events?limit=200", &tokens.access).await;
    assert!(most["events"].is_array(), "{most}");
    let no_body = app
        .client
        .post(app.url("/auth/password"))
        .bearer_auth(&tokens.access)
        .header("content-type", "application/json")
        .body("{")
        .send()
        .await
        .unwrap();
    assert_error(no_body, StatusCode::BAD_REQUEST, "malformed_json").await;
}

#[tokio::test]
async fn logout_is_idempotent_cheap_and_rate_limited() {
    let app = spawn_app(&["--rate-logout-per-ip", "3/1m"]).await;
    let admin = app.create_admin("root@example.com").await;
    let tokens = app.user_with_session("hu@example.com").await;
    let logout = || {
        app.client
            .post(app.url("/auth/logout"))
            .bearer_auth(&tokens.access)
            .json(&json!({ "refresh_token": tokens.refresh }))
            .send()
    };
    assert_eq!(logout().await.unwrap().status(), StatusCode::NO_CONTENT);
    assert_eq!(logout().await.unwrap().status(), StatusCode::NO_CONTENT);
    let log = app.get_json("/admin/security-events", &admin.access).await;
    let logouts = log["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "logout")
        .count();
    assert_eq!(logouts, 1, "an ended session is not ended again");
    assert_eq!(logout().await.unwrap().status(), StatusCode::NO_CONTENT);
    assert_error(
        logout().await.unwrap(),
        StatusCode::TOO_MANY_REQUESTS,
        "rate_limited",
    )
    .await;
}
