//! `/metrics` (parsed with a Prometheus text-format parser, counters checked by exact
//! amounts) and the request id (in the response, and in the log lines of its request).

use std::process::Stdio;
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

use crate::helpers::*;

/// The value of the sample `name` whose labels include all of `labels` (0 if absent).
fn sample(scrape: &prometheus_parse::Scrape, name: &str, labels: &[(&str, &str)]) -> f64 {
    scrape
        .samples
        .iter()
        .filter(|s| s.metric == name)
        .filter(|s| labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
        .map(|s| match s.value {
            prometheus_parse::Value::Counter(v)
            | prometheus_parse::Value::Gauge(v)
            | prometheus_parse::Value::Untyped(v) => v,
            _ => 0.0,
        })
        .sum()
}

async fn scrape(app: &TestApp, base: &str) -> prometheus_parse::Scrape {
    let response = app
        .client
        .get(format!("{base}/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let content_type = response.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        content_type.starts_with("application/openmetrics-text"),
        "{content_type}"
    );
    let text = response.text().await.unwrap();
    let lines = text.lines().map(|l| Ok(l.to_owned()));
    prometheus_parse::Scrape::parse(lines).unwrap()
}

#[tokio::test]
async fn counters_move_by_the_right_amounts_across_login_refresh_replay_and_reuse() {
    let app = spawn_app(&["--reuse-grace", "10s"]).await;
    let base = app.address.clone();
    let before = scrape(&app, &base).await;
    assert_eq!(sample(&before, "latchkey_logins_total", &[]), 0.0);

    let first = app.user_with_session("mo@example.com").await;
    let wrong = json!({ "email": "mo@example.com", "password": "not the password at all" });
    let response = app.post_json("/auth/login", &wrong).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    // Rotate, replay within the grace window, rotate again, then replay the first
    // token once more: its successor is no longer the newest, so that is reuse.
    let response = app.refresh_body(&first.refresh).await;
    assert_eq!(response.status(), StatusCode::OK);
    let second = Tokens::from(response.json::<Value>().await.unwrap());
    assert_eq!(
        app.refresh_body(&first.refresh).await.status(),
        StatusCode::OK
    );
    assert_eq!(
        app.refresh_body(&second.refresh).await.status(),
        StatusCode::OK
    );
    let reused = app.refresh_body(&first.refresh).await;
    assert_error(reused, StatusCode::UNAUTHORIZED, "refresh_token_reused").await;
    assert_eq!(
        app.me(&first.access).await.status(),
        StatusCode::UNAUTHORIZED
    );

    let after = scrape(&app, &base).await;
    let count = |name: &str, labels: &[(&str, &str)]| sample(&after, name, labels);
    assert_eq!(
        count("latchkey_logins_total", &[("outcome", "success")]),
        1.0
    );
    assert_eq!(
        count(
            "latchkey_logins_total",
            &[("outcome", "invalid_credentials")]
        ),
        1.0
    );
    assert_eq!(
        count("latchkey_refreshes_total", &[("outcome", "rotated")]),
        2.0
    );
    assert_eq!(
        count("latchkey_refreshes_total", &[("outcome", "grace_replay")]),
        1.0
    );
    assert_eq!(
        count("latchkey_refreshes_total", &[("outcome", "reuse_detected")]),
        1.0
    );
    assert_eq!(count("latchkey_refreshes_total", &[]), 4.0);
    assert_eq!(
        count("latchkey_revocations_total", &[("kind", "session")]),
        1.0
    );
    assert_eq!(
        count(
            "latchkey_access_token_checks_total",
            &[("outcome", "token_revoked")]
        ),
        1.0
    );
    let refresh_route = [("route", "/auth/refresh"), ("method", "POST")];
    assert_eq!(
        count(
            "latchkey_http_requests_total",
            &[refresh_route[0], refresh_route[1], ("status", "200")]
        ),
        3.0
    );
    assert_eq!(
        count(
            "latchkey_http_requests_total",
            &[refresh_route[0], ("status", "401")]
        ),
        1.0
    );
    assert_eq!(
        count(
            "latchkey_http_request_duration_seconds_count",
            &refresh_route
        ),
        4.0
    );
    assert_eq!(
        count(
            "latchkey_error_responses_total",
            &[("code", "refresh_token_reused")]
        ),
        1.0
    );

    // Unknown paths are one bounded label, never the path itself.
    let response = app
        .client
        .get(app.url("/no/such/path-12345"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    let last = scrape(&app, &base).await;
    assert_eq!(
        sample(
            &last,
            "latchkey_http_requests_total",
            &[("route", "unmatched")]
        ),
        1.0
    );
    assert!(last
        .samples
        .iter()
        .all(|s| s.labels.values().all(|v| !v.contains("12345"))));
}

#[tokio::test]
async fn with_a_metrics_address_metrics_leave_the_main_listener() {
    let app = spawn_app(&["--metrics-bind", "127.0.0.1:0"]).await;
    let response = app.client.get(app.url("/metrics")).send().await.unwrap();
    assert_error(response, StatusCode::NOT_FOUND, "not_found").await;
    let address = app.metrics_address.clone().expect("a metrics listener");
    // The live-sessions gauge shows the last periodic count (run here by hand).
    app.user_with_session("vi@example.com").await;
    app.login_body("vi@example.com").await;
    assert_eq!(app.service.count_live_sessions().await.unwrap(), 2);
    let scraped = scrape(&app, &address).await;
    assert_eq!(sample(&scraped, "latchkey_live_sessions", &[]), 2.0);
}

#[tokio::test]
async fn an_inbound_request_id_is_honoured_only_from_a_trusted_proxy() {
    for (trusted, honoured) in [
        (None, false),
        (Some("127.0.0.1/32"), true),
        (Some("10.0.0.0/8"), false),
    ] {
        let extra: Vec<&str> = trusted.map_or(vec![], |t| vec!["--trusted-proxies", t]);
        let app = spawn_app(&extra).await;
        let response = app
            .client
            .get(app.url("/healthz"))
            .header("x-request-id", "proxy-id-42")
            .send()
            .await
            .unwrap();
        let id = response.headers()["x-request-id"]
            .to_str()
            .unwrap()
            .to_owned();
        if honoured {
            assert_eq!(id, "proxy-id-42");
        } else {
            assert!(uuid::Uuid::parse_str(&id).is_ok(), "{trusted:?}: {id}");
        }
        // Ids that could forge log lines are replaced even from a trusted proxy.
        let response = app
            .client
            .get(app.url("/healthz"))
            .header("x-request-id", "a b\"}")
            .send()
            .await
            .unwrap();
        let id = response.headers()["x-request-id"].to_str().unwrap();
        assert!(uuid::Uuid::parse_str(id).is_ok(), "{id}");
    }
}

#[tokio::test]
async fn every_log_line_of_a_request_carries_its_id_and_no_secret() {
    let dir = tempfile::tempdir().unwrap();
    let database = format!("sqlite://{}", dir.path().join("latchkey.db").display());
    let mut child = Command::new(env!("CARGO_BIN_EXE_latchkey"))
        .env("LATCHKEY_BIND", "127.0.0.1:0")
        .env("LATCHKEY_DATABASE_URL", &database)
        .env("LATCHKEY_ISSUER", "https://auth.test")
        .env("LATCHKEY_AUDIENCE", "test-api")
        .env("LATCHKEY_COOKIE_SECURE", "false")
        .env("LATCHKEY_LOG_JSON", "true")
        // Debug too: the access-token refusal is logged at debug inside the request.
        .env("LATCHKEY_LOG", "debug,sqlx=warn,hyper=warn,h2=warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("latchkey starts");
    let mut stdout = BufReader::new(child.stdout.take().unwrap()).lines();
    let line = tokio::time::timeout(Duration::from_secs(60), stdout.next_line())
        .await
        .expect("the address is announced")
        .unwrap()
        .unwrap();
    let address = line
        .split_whitespace()
        .find(|w| w.starts_with("http://"))
        .unwrap()
        .to_owned();
    let client = reqwest::Client::new();
    let register = json!({ "email": "lu@example.com", "password": PASSWORD });
    let response = client
        .post(format!("{address}/auth/register"))
        .json(&register)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    let login =
        json!({ "email": "lu@example.com", "password": PASSWORD, "refresh_delivery": "body" });
    let response = client
        .post(format!("{address}/auth/login"))
        .json(&login)
        .send()
        .await
        .unwrap();
    let tokens = Tokens::from(response.json::<Value>().await.unwrap());
    // A refused token: the refusal is logged (at debug) inside the request.
    let response = client
        .get(format!("{address}/auth/me"))
        .bearer_auth(format!("{}x", tokens.access))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let id = response.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(uuid::Uuid::parse_str(&id).is_ok());

    // Read the log until the request's end is logged.
    let mut stderr = BufReader::new(child.stderr.take().unwrap()).lines();
    let mut lines = Vec::new();
    let read = async {
        while let Some(line) = stderr.next_line().await.unwrap() {
            let done = line.contains("request finished") && line.contains(&id);
            lines.push(line);
            if done {
                break;
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(60), read)
        .await
        .expect("the request is logged");
    let _ = child.kill().await;

    let ours: Vec<Value> = lines
        .iter()
        .map(|l| serde_json::from_str::<Value>(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .filter(|l| {
            let spans = l["spans"].as_array().into_iter().flatten();
            spans
                .chain([&l["span"]])
                .any(|s| s["request_id"] == id.as_str())
        })
        .collect();
    let messages: Vec<&str> = ours
        .iter()
        .filter_map(|l| l["fields"]["message"].as_str())
        .collect();
    assert!(messages.contains(&"access token refused"), "{messages:?}");
    assert!(messages.contains(&"request finished"), "{messages:?}");
    let finished = ours
        .iter()
        .find(|l| l["fields"]["message"] == "request finished")
        .unwrap();
    assert_eq!(finished["fields"]["status"], 401);
    assert!(finished["fields"]["latency_ms"].is_number());
    assert_eq!(finished["span"]["route"], "/auth/me");
    assert_eq!(finished["span"]["method"], "GET");
    // Each request has its own id; no secret is anywhere in the log.
    let all = lines.join("\n");
    assert!(
        lines
            .iter()
            .filter(|l| l.contains("request finished"))
            .count()
            >= 3
    );
    for secret in [PASSWORD, tokens.access.as_str(), tokens.refresh.as_str()] {
        assert!(!all.contains(secret), "a secret was logged");
    }
}
