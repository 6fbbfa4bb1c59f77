//! The OpenAPI document at `/openapi.json`: it describes every route the router has,
//! every documented operation is served, the errors the server answers are the ones
//! documented, and the document is valid OpenAPI 3.1 (openapi-spec-validator).

use std::process::Stdio;

use reqwest::{Method, StatusCode};
use serde_json::Value;
use tokio::process::Command;

use crate::helpers::*;

/// The feed secret of these tests' servers (so `/auth/revocations` is served).
pub const FEED_SECRET: &str = "feed-secret-for-the-openapi-tests-0123456789";

/// The Python of `LATCHKEY_TEST_PYTHON` (or `python3`).
pub fn python() -> String {
    std::env::var("LATCHKEY_TEST_PYTHON").unwrap_or_else(|_| "python3".into())
}

/// Whether `python()` imports `module`; under `CI=true` a missing module fails the test.
pub async fn python_imports(module: &str, package: &str) -> bool {
    let probe = Command::new(python())
        .args(["-c", &format!("import {module}")])
        .output()
        .await;
    match probe {
        Ok(output) if output.status.success() => true,
        _ if std::env::var("CI").as_deref() == Ok("true") => {
            panic!("{package} is not importable by {} and CI=true", python())
        }
        _ => {
            eprintln!(
                "skipping: {package} not available to {} (set LATCHKEY_TEST_PYTHON)",
                python()
            );
            false
        }
    }
}

pub async fn document(app: &TestApp) -> Value {
    let response = app
        .client
        .get(app.url("/openapi.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.headers()["content-type"].to_str().unwrap(),
        "application/json"
    );
    response.json().await.unwrap()
}

/// Every (method, path) of the document.
fn operations(doc: &Value) -> Vec<(String, String, Value)> {
    let mut found = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            found.push((method.clone(), path.clone(), operation.clone()));
        }
    }
    found
}

/// The codes an operation documents for `status`.
fn documented_codes(operation: &Value, status: u16) -> Vec<String> {
    let schema =
        &operation["responses"][status.to_string()]["content"]["application/json"]["schema"];
    schema["allOf"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|part| part["properties"]["code"]["enum"].as_array())
        .flatten()
        .map(|code| code.as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn every_documented_operation_is_served_and_refuses_as_documented() {
    let app = spawn_app(&["--revocation-feed-secret", FEED_SECRET]).await;
    let doc = document(&app).await;
    assert_eq!(doc["openapi"], "3.1.0");
    let operations = operations(&doc);
    let listed: Vec<String> = operations
        .iter()
        .map(|(method, path, _)| format!("{} {path}", method.to_uppercase()))
        .collect();
    // The router's routes, as the README lists them (pages and files included).
    for expected in [
        "POST /auth/register",
        "POST /auth/login",
        "POST /auth/refresh",
        "POST /auth/logout",
        "GET /auth/me",
        "DELETE /auth/sessions/{id}",
        "POST /auth/login/mfa",
        "DELETE /auth/mfa/totp",
        "POST /auth/password-reset/confirm",
        "PATCH /admin/users/{id}",
        "DELETE /admin/users/{id}/mfa",
        "POST /admin/keys/{kid}/revoke",
        "POST /oauth/introspect",
        "POST /oauth/revoke",
        "GET /.well-known/oauth-authorization-server",
        "GET /.well-known/jwks.json",
        "GET /auth/revocations",
        "GET /metrics",
        "GET /healthz",
        "GET /readyz",
        "GET /openapi.json",
        "GET /docs/api",
        "GET /",
        "GET /account",
        "GET /ui/theme.css",
        "GET /sdk/latchkey.js",
        "GET /sdk/latchkey.d.ts",
    ] {
        assert!(
            listed.contains(&expected.to_owned()),
            "{expected} is not in {listed:?}"
        );
    }
    assert!(operations.len() >= 55, "{} operations", operations.len());

    let mut ids = std::collections::HashSet::new();
    for (method, path, operation) in &operations {
        let label = format!("{} {path}", method.to_uppercase());
        // Described: a summary (the handler's doc comment), a tag, a unique id, a 2xx.
        assert!(
            operation["summary"].as_str().is_some_and(|s| !s.is_empty()),
            "{label} has no summary"
        );
        assert!(operation["tags"][0].is_string(), "{label} has no tag");
        assert!(
            ids.insert(operation["operationId"].as_str().unwrap().to_owned()),
            "{label}: operationId repeated"
        );
        let responses = operation["responses"].as_object().unwrap();
        assert!(
            responses.keys().any(|s| s.starts_with('2')),
            "{label} documents no success"
        );
        assert!(
            !documented_codes(operation, 500).is_empty(),
            "{label} lacks the common refusals"
        );

        // Served: the router answers, not its fallbacks (404 not_found, 405).
        let url = app.url(&path.replace("{id}", "0").replace("{kid}", "0"));
        let method = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
        let response = app.client.request(method, url).send().await.unwrap();
        let status = response.status();
        assert!(
            status != StatusCode::NOT_FOUND && status != StatusCode::METHOD_NOT_ALLOWED,
            "{label} answered {status}: not routed"
        );
        assert!(!status.is_server_error(), "{label} answered {status}");
        // Protected operations refuse a request without credentials...
        let security = operation["security"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let protected = !security.is_empty()
            && security
                .iter()
                .all(|alternative| !alternative.as_object().unwrap().is_empty());
        if protected {
            assert!(
                status.is_client_error(),
                "{label} answered {status} without credentials"
            );
        }
        // ... and every refusal is documented, with its code, for its status.
        if !status.is_success() {
            let body: Value = response.json().await.unwrap();
            let code = body["code"].as_str().unwrap();
            assert!(
                documented_codes(operation, status.as_u16()).contains(&code.to_owned()),
                "{label} answered {status} {code}, which the document does not list"
            );
        }
    }
}

#[tokio::test]
async fn the_fallbacks_still_answer_routes_the_document_lacks() {
    // The probe above would pass for a router that answered everything: check that
    // unknown paths and methods reach the fallbacks.
    let app = spawn_app(&[]).await;
    let unknown = app
        .client
        .get(app.url("/auth/nothing-here"))
        .send()
        .await
        .unwrap();
    assert_error(unknown, StatusCode::NOT_FOUND, "not_found").await;
    let wrong_method = app.client.put(app.url("/auth/login")).send().await.unwrap();
    assert_error(
        wrong_method,
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
    )
    .await;
}

#[tokio::test]
async fn the_document_lists_what_this_server_serves() {
    // Pages off and metrics on their own listener: neither is routed, nor documented.
    let app = spawn_app(&["--ui", "false", "--metrics-bind", "127.0.0.1:0"]).await;
    let doc = document(&app).await;
    let paths: Vec<&String> = doc["paths"].as_object().unwrap().keys().collect();
    for gone in ["/", "/account", "/docs/api", "/ui/style.css", "/metrics"] {
        assert!(!paths.iter().any(|p| *p == gone), "{gone} is documented");
        let response = app.client.get(app.url(gone)).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "{gone}");
    }
    for kept in ["/sdk/latchkey.js", "/openapi.json", "/auth/login"] {
        assert!(paths.iter().any(|p| *p == kept), "{kept} is not documented");
    }
    // The cookie scheme names this server's cookie.
    assert_eq!(
        doc["components"]["securitySchemes"]["refresh_cookie"]["name"],
        "latchkey_refresh"
    );
}

#[tokio::test]
async fn the_document_is_valid_openapi_3_1() {
    if !python_imports("openapi_spec_validator", "openapi-spec-validator").await {
        return;
    }
    let app = spawn_app(&[]).await;
    let doc = document(&app).await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("openapi.json");
    std::fs::write(&file, serde_json::to_vec_pretty(&doc).unwrap()).unwrap();
    let validate = |file: std::path::PathBuf| async move {
        Command::new(python())
            .args(["-m", "openapi_spec_validator", "--schema", "3.1"])
            .arg(file)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .output()
            .await
            .unwrap()
    };
    let output = validate(file).await;
    assert!(
        output.status.success(),
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    // The validator refuses a broken document (so the pass above means something).
    let mut broken = doc.clone();
    broken["paths"]["/auth/login"]["post"]["responses"] = Value::Null;
    let broken_file = dir.path().join("broken.json");
    std::fs::write(&broken_file, serde_json::to_vec(&broken).unwrap()).unwrap();
    assert!(!validate(broken_file).await.status.success());
}

#[tokio::test]
async fn the_api_page_is_served_with_its_policy() {
    let app = spawn_app(&[]).await;
    let page = app.client.get(app.url("/docs/api")).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    let csp = page.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"),
        "{csp}"
    );
    let html = page.text().await.unwrap();
    assert!(html.contains("<script type=\"module\" src=\"/ui/api-docs.js\"></script>"));
    assert!(
        !html.contains("<script>") && !html.contains("style="),
        "no inline script or style"
    );
    for asset in ["/ui/api-docs.js", "/ui/api-docs.css"] {
        let response = app.client.get(app.url(asset)).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{asset}");
    }
}

/// Found by schemathesis: serde reads a struct from a JSON array, so `[]` logged out
/// (204) and `["email", "password"]` would have been a login. Bodies must be objects.
#[tokio::test]
async fn a_json_array_is_not_a_body() {
    let app = spawn_app(&[]).await;
    let logout = app.post_json("/auth/logout", &serde_json::json!([])).await;
    assert_error(logout, StatusCode::BAD_REQUEST, "invalid_request").await;
    app.register("array@example.com").await;
    let login = app
        .post_json(
            "/auth/login",
            &serde_json::json!(["array@example.com", PASSWORD]),
        )
        .await;
    assert_error(login, StatusCode::BAD_REQUEST, "invalid_request").await;
}
