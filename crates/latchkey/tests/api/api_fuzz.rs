//! schemathesis against the running server's own document: with a user's token, an
//! admin's token, OAuth client credentials, the feed secret, and with no credentials at
//! all. No 5xx, every response (status, content type, headers, body) as documented,
//! and nothing protected answers 2xx without credentials (schemathesis's `ignored_auth`
//! and `interop/schemathesis_hooks.py`).
//!
//! Bounded for CI: `LATCHKEY_SCHEMATHESIS_EXAMPLES` (default 10) examples per operation
//! and pass, seed `LATCHKEY_SCHEMATHESIS_SEED` (default fixed, so a CI failure repeats).

use std::process::Stdio;
use std::time::Instant;

use tokio::process::Command;

use crate::helpers::*;
use crate::openapi::{python, python_imports, FEED_SECRET};

const CLIENT: &str = "fuzz-client";
const CLIENT_SECRET: &str = "fuzz-client-secret-0123456789";

/// Operations that end the caller's own session: a token passed to every request would
/// stop working after the first, so they run last, in a pass of their own.
const SESSION_ENDERS: &str = "^/auth/(logout|logout-all)$";

struct Pass<'a> {
    name: &'a str,
    args: Vec<String>,
}

async fn run(app: &TestApp, pass: &Pass<'_>) {
    let examples =
        std::env::var("LATCHKEY_SCHEMATHESIS_EXAMPLES").unwrap_or_else(|_| "10".to_owned());
    let seed =
        std::env::var("LATCHKEY_SCHEMATHESIS_SEED").unwrap_or_else(|_| "20261201".to_owned());
    let hooks = concat!(env!("CARGO_MANIFEST_DIR"), "/../../interop");
    let reports = tempfile::tempdir().unwrap();
    let started = Instant::now();
    let output = Command::new(python())
        .args(["-m", "schemathesis.cli", "run", &app.url("/openapi.json")])
        .args([
            "--checks",
            "not_a_server_error,status_code_conformance,content_type_conformance,\
             response_headers_conformance,response_schema_conformance,\
             negative_data_rejection,ignored_auth,no_success_without_credentials",
            "--phases",
            "examples,coverage,fuzzing",
            "--max-examples",
            &examples,
            "--seed",
            &seed,
            // One worker: CPython 3.11's `ast.parse` is not safe across threads, and
            // hypothesis calls it while building strategies ("AST constructor recursion
            // depth mismatch" with two).
            "--workers",
            "1",
            "--no-shrink",
            "--suppress-health-check",
            "all",
            "--report-dir",
        ])
        .arg(reports.path())
        .args(&pass.args)
        .env("SCHEMATHESIS_HOOKS", "schemathesis_hooks")
        .env("PYTHONPATH", hooks)
        .env("NO_COLOR", "1")
        // Its cache (`.schemathesis/`) goes to the scratch directory, not the crate.
        .current_dir(reports.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    eprintln!(
        "schemathesis, {}: {:.1} s\n{}",
        pass.name,
        started.elapsed().as_secs_f64(),
        stdout
            .lines()
            .rev()
            .take(6)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect::<Vec<_>>()
            .join("\n")
    );
    assert!(
        output.status.success(),
        "schemathesis, {}:\n{stdout}{}",
        pass.name,
        String::from_utf8_lossy(&output.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schemathesis_finds_nothing_against_the_document() {
    if !python_imports("schemathesis", "schemathesis").await {
        return;
    }
    let clients = format!("{CLIENT}:{CLIENT_SECRET}");
    let app = spawn_app(&[
        "--revocation-feed-secret",
        FEED_SECRET,
        "--clients",
        &clients,
    ])
    .await;
    let user = app.user_with_session("fuzz-user@example.com").await;
    let admin = app.create_admin("fuzz-admin@example.com").await;
    let bearer = |token: &str| vec!["-H".to_owned(), format!("Authorization: Bearer {token}")];
    let with = |mut args: Vec<String>, more: &[&str]| {
        args.extend(more.iter().map(|s| (*s).to_owned()));
        args
    };
    let passes = [
        Pass {
            name: "no credentials",
            args: vec![],
        },
        Pass {
            name: "user token",
            args: with(
                bearer(&user.access),
                &["--exclude-path-regex", SESSION_ENDERS],
            ),
        },
        Pass {
            name: "admin token",
            args: with(
                bearer(&admin.access),
                // One regex: given twice, schemathesis keeps only the last.
                &[
                    "--exclude-path-regex",
                    "^/auth/(logout|logout-all)$|^/(sdk|ui)/",
                ],
            ),
        },
        Pass {
            name: "OAuth client",
            args: vec![
                "--auth".to_owned(),
                clients.clone(),
                "--include-path-regex".to_owned(),
                "^/oauth/".to_owned(),
            ],
        },
        Pass {
            name: "feed secret",
            args: with(
                bearer(FEED_SECRET),
                &["--include-path", "/auth/revocations"],
            ),
        },
    ];
    for pass in &passes {
        run(&app, pass).await;
    }
    // The admin pass may have revoked, disabled or deleted any user it found through
    // `GET /admin/users` (itself included): the last pass gets a user of its own.
    let closer = app.user_with_session("fuzz-closer@example.com").await;
    run(
        &app,
        &Pass {
            name: "user token, ending the session",
            args: with(
                bearer(&closer.access),
                &["--include-path-regex", SESSION_ENDERS],
            ),
        },
    )
    .await;
    // The server is still whole: a new user registers, logs in and is let in.
    let after = app.user_with_session("fuzz-after@example.com").await;
    assert_eq!(
        app.me(&after.access).await.status(),
        reqwest::StatusCode::OK
    );
}
