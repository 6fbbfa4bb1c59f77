//! The security review's serving items (issue 12): slow clients and the connection cap,
//! file modes of the SQLite database, the `__Host-` cookie, generic token errors and
//! secrets kept out of `Debug` and `--help`.

use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use reqwest::header::{COOKIE, ORIGIN, SET_COOKIE};
use reqwest::StatusCode;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::helpers::*;

fn socket_addr(app: &TestApp) -> String {
    app.address.trim_start_matches("http://").to_owned()
}

/// Trickle a request head, one byte every 100 ms, until the server closes the
/// connection (true) or 300 bytes have gone without that (false).
async fn trickle_head_until_closed(addr: String, started: tokio::sync::mpsc::Sender<()>) -> bool {
    let stream = TcpStream::connect(&addr).await.unwrap();
    let (mut reader, mut writer) = stream.into_split();
    writer
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nX-Slow: ")
        .await
        .unwrap();
    let _ = started.send(()).await;
    let mut buf = [0u8; 512];
    for _ in 0..300 {
        tokio::select! {
            read = reader.read(&mut buf) => match read {
                Ok(0) | Err(_) => return true,
                Ok(_) => continue,
            },
            () = tokio::time::sleep(Duration::from_millis(100)) => {
                if writer.write_all(b"a").await.is_err() {
                    return true;
                }
            }
        }
    }
    false
}

#[tokio::test]
async fn slow_request_heads_are_cut_off_while_healthz_keeps_answering() {
    let app = spawn_app(&["--header-timeout", "1s"]).await;
    let (started_tx, mut started_rx) = tokio::sync::mpsc::channel(200);
    let slow: Vec<_> = (0..200)
        .map(|_| {
            tokio::spawn(trickle_head_until_closed(
                socket_addr(&app),
                started_tx.clone(),
            ))
        })
        .collect();
    drop(started_tx);
    for _ in 0..200 {
        started_rx.recv().await.unwrap();
    }
    // Every slow connection has started its head: the server still answers others.
    for _ in 0..5 {
        let response = app.client.get(app.url("/healthz")).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
    }
    for task in slow {
        assert!(
            task.await.unwrap(),
            "a connection trickling its head was never closed"
        );
    }
    let response = app.client.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
}

/// Send `GET /healthz` on a kept-alive connection and read the answer's head.
async fn healthz_on(stream: &mut TcpStream) -> String {
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .await
        .unwrap();
    let mut buf = vec![0u8; 4096];
    let n = stream.read(&mut buf).await.unwrap();
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

#[tokio::test]
async fn connections_beyond_the_limit_are_answered_503_and_closed() {
    let app = spawn_app(&["--max-connections", "3"]).await;
    let addr = socket_addr(&app);
    let mut held = Vec::new();
    for _ in 0..3 {
        let mut stream = TcpStream::connect(&addr).await.unwrap();
        assert!(healthz_on(&mut stream).await.starts_with("HTTP/1.1 200"));
        held.push(stream);
    }
    // A fourth connection, while three are open and kept alive.
    let mut extra = TcpStream::connect(&addr).await.unwrap();
    let mut answer = String::new();
    tokio::time::timeout(Duration::from_secs(30), extra.read_to_string(&mut answer))
        .await
        .expect("the connection beyond the limit was neither answered nor closed")
        .unwrap();
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
    let body: Value = serde_json::from_str(answer.split("\r\n\r\n").nth(1).unwrap()).unwrap();
    assert_eq!(body["code"], "too_many_connections");
    // The held ones are still served.
    assert!(healthz_on(&mut held[0]).await.starts_with("HTTP/1.1 200"));
    // Once one closes, a new connection gets in (as soon as the server has seen it go).
    drop(held.pop());
    let mut served = false;
    for _ in 0..200 {
        // A refused connection may also be reset under the request: not an error here.
        let mut stream = TcpStream::connect(&addr).await.unwrap();
        let request = b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n";
        let mut buf = [0u8; 64];
        if stream.write_all(request).await.is_ok()
            && stream
                .read(&mut buf)
                .await
                .is_ok_and(|n| buf[..n].starts_with(b"HTTP/1.1 200"))
        {
            served = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(served, "a freed connection slot was never reused");
}

/// A login request whose head has arrived and whose body is on its way.
async fn start_slow_login(addr: &str) -> TcpStream {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream
        .write_all(
            b"POST /auth/login HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n\
              Content-Length: 100\r\nExpect: 100-continue\r\n\r\n",
        )
        .await
        .unwrap();
    // hyper answers 100 Continue when the server starts reading the body: proof that
    // the head is in and the body is being waited for.
    let mut buf = [0u8; 256];
    let n = stream.read(&mut buf).await.unwrap();
    assert!(
        buf[..n].starts_with(b"HTTP/1.1 100"),
        "{}",
        String::from_utf8_lossy(&buf[..n])
    );
    stream.write_all(b"{\"email\":").await.unwrap();
    stream
}

#[tokio::test]
async fn a_request_whose_body_is_still_arriving_is_not_in_flight() {
    let app = spawn_app(&[]).await;
    let addr = socket_addr(&app);
    let mut slow = Vec::new();
    for _ in 0..5 {
        slow.push(start_slow_login(&addr).await);
    }
    assert_eq!(app.service.hashing().requests_in_flight(), 0);
    // Finish one body: it is answered like any other request.
    let mut stream = slow.pop().unwrap();
    let rest = format!("{:<91}", "\"a@example.com\",\"password\":\"x\"}");
    stream.write_all(rest.as_bytes()).await.unwrap();
    let mut buf = vec![0u8; 4096];
    let n = stream.read(&mut buf).await.unwrap();
    let answer = String::from_utf8_lossy(&buf[..n]);
    assert!(answer.starts_with("HTTP/1.1 4"), "{answer}");
}

#[tokio::test]
async fn a_body_that_does_not_arrive_in_time_is_answered_408() {
    let app = spawn_app(&["--body-timeout", "1s"]).await;
    let mut stream = start_slow_login(&socket_addr(&app)).await;
    let mut answer = String::new();
    tokio::time::timeout(Duration::from_secs(30), stream.read_to_string(&mut answer))
        .await
        .expect("the server never gave up on the body")
        .unwrap();
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    let body: Value = serde_json::from_str(answer.split("\r\n\r\n").nth(1).unwrap()).unwrap();
    assert_eq!(body["code"], "body_timeout");
}

#[tokio::test]
async fn graceful_shutdown_still_finishes() {
    let app = spawn_app(&[]).await;
    let mut idle = TcpStream::connect(socket_addr(&app)).await.unwrap();
    assert!(healthz_on(&mut idle).await.starts_with("HTTP/1.1 200"));
    // An idle kept-alive connection does not hold the shutdown back.
    app.stop().await;
}

fn mode_of(path: &std::path::Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

fn with_suffix(path: &std::path::Path, suffix: &str) -> std::path::PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    name.into()
}

#[tokio::test]
async fn the_database_and_its_wal_and_shm_are_created_private() {
    let (_dir, path) = temp_db();
    let app = spawn_app_on(&path, &[]).await;
    app.user_with_session("mode@example.com").await;
    for file in [
        path.clone(),
        with_suffix(&path, "-wal"),
        with_suffix(&path, "-shm"),
    ] {
        assert_eq!(mode_of(&file), 0o600, "{}", file.display());
    }
    app.stop().await;
}

#[tokio::test]
async fn a_database_others_can_read_is_refused_unless_allowed() {
    let (_dir, path) = temp_db();
    let app = spawn_app_on(&path, &[]).await;
    app.stop().await;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    let url = format!("sqlite://{}", path.display());
    let err = latchkey::Application::build(config_for_url(&url, &[]))
        .await
        .expect_err("a world-readable database is refused");
    let message = err.to_string();
    assert!(message.contains("644"), "{message}");
    assert!(
        message.contains("LATCHKEY_ALLOW_INSECURE_DB_PERMISSIONS"),
        "{message}"
    );
    let app = spawn_app_on(&path, &["--allow-insecure-db-permissions", "true"]).await;
    let response = app.client.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    app.stop().await;
}

#[tokio::test]
async fn the_secure_refresh_cookie_is_a_host_cookie_and_two_are_refused() {
    let app = spawn_app(&[
        "--cookie-secure",
        "true",
        "--allowed-origins",
        "https://app.example.com",
    ])
    .await;
    assert_eq!(
        app.register("host@example.com").await.status(),
        StatusCode::CREATED
    );
    let response = app
        .post_json(
            "/auth/login",
            &json!({ "email": "host@example.com", "password": PASSWORD }),
        )
        .await;
    let cookie = response.headers()[SET_COOKIE].to_str().unwrap().to_owned();
    let attributes: Vec<&str> = cookie.split(';').map(str::trim).collect();
    assert!(
        attributes[0].starts_with("__Host-latchkey_refresh="),
        "{cookie}"
    );
    assert!(attributes.contains(&"Path=/"), "{cookie}");
    assert!(attributes.contains(&"Secure"), "{cookie}");
    assert!(
        !attributes
            .iter()
            .any(|a| a.to_ascii_lowercase().starts_with("domain")),
        "{cookie}"
    );
    let pair = attributes[0];
    let send = |cookies: String, path: &'static str| {
        app.client
            .post(app.url(path))
            .header(COOKIE, cookies)
            .header(ORIGIN, "https://app.example.com")
            .header("x-latchkey-csrf", "1")
            .send()
    };
    // A planted second cookie: browsers send one with a longer path first.
    let planted = "__Host-latchkey_refresh=planted-by-a-sibling";
    for (cookies, path) in [
        (format!("{planted}; {pair}"), "/auth/refresh"),
        (format!("{pair}; {planted}"), "/auth/refresh"),
        (format!("{planted}; {pair}"), "/auth/logout"),
    ] {
        let response = send(cookies, path).await.unwrap();
        assert_error(
            response,
            StatusCode::BAD_REQUEST,
            "refresh_cookie_duplicated",
        )
        .await;
    }
    // The genuine cookie alone still works.
    let response = send(pair.to_owned(), "/auth/refresh").await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
}

#[tokio::test]
async fn token_errors_say_what_code_but_not_why() {
    let app = spawn_app(&[]).await;
    let tokens = app.user_with_session("why@example.com").await;
    let [header, payload, _]: [&str; 3] = tokens
        .access
        .split('.')
        .collect::<Vec<_>>()
        .try_into()
        .unwrap();
    let bad_signature = format!("{header}.{payload}.AAAA");
    for token in [bad_signature.as_str(), "not-a-jwt"] {
        let body = assert_error(
            app.me(token).await,
            StatusCode::UNAUTHORIZED,
            "token_invalid",
        )
        .await;
        assert_eq!(body["error"], "the access token is not valid", "{body}");
    }
    let response = app.client.get(app.url("/auth/me")).send().await.unwrap();
    let body = assert_error(response, StatusCode::UNAUTHORIZED, "token_missing").await;
    assert!(!body["error"].as_str().unwrap().contains("signature"));
}

#[tokio::test]
async fn debug_of_the_web_settings_shows_no_feed_secret() {
    let (_dir, path) = temp_db();
    let url = format!("sqlite://{}", path.display());
    let secret = "feed-secret-that-must-not-leak-0123456789";
    let app =
        latchkey::Application::build(config_for_url(&url, &["--revocation-feed-secret", secret]))
            .await
            .unwrap();
    let debug = format!("{:?}", app.state().web);
    assert!(!debug.contains(secret), "{debug}");
    // The feed still accepts the secret itself.
    let address = format!("http://{}", app.local_addr());
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(app.run_until(async move {
        let _ = rx.await;
    }));
    let response = reqwest::Client::new()
        .get(format!("{address}/auth/revocations"))
        .bearer_auth(secret)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let _ = tx.send(());
    server.await.unwrap().unwrap();
}

#[tokio::test]
async fn help_does_not_print_the_database_url() {
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_latchkey"))
        .arg("--help")
        .env(
            "LATCHKEY_DATABASE_URL",
            "postgres://latchkey:hunter2@db.internal/latchkey",
        )
        .env("LATCHKEY_REDIS_URL", "redis://:hunter3@cache.internal")
        .output()
        .await
        .unwrap();
    assert!(output.status.success());
    let help = String::from_utf8_lossy(&output.stdout);
    assert!(help.contains("LATCHKEY_DATABASE_URL"), "{help}");
    assert!(!help.contains("hunter2"), "{help}");
    assert!(!help.contains("hunter3"), "{help}");
}
